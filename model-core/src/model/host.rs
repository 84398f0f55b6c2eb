//! A model's weights copied to the CPU (flex) with asynchronous reads: a model trained
//! on WebGPU in the browser, where a synchronous read panics, becomes one that the
//! exporters ([`crate::export`], [`crate::package`]) read as any other.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;

use super::BertForSequenceClassification;
use crate::error::{Error, Result};

impl BertForSequenceClassification {
    /// This model on `Device::flex()`, without autodiff, every weight read back with
    /// `into_data_async` (on any device; on flex already it is a copy).
    pub async fn to_host_async(&self) -> Result<Self> {
        struct Collect(Vec<(ParamId, Tensor<1>, Vec<usize>)>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let t = param.val();
                let shape = t.dims().to_vec();
                let n = shape.iter().product::<usize>();
                self.0.push((param.id, t.reshape([n]), shape));
            }
        }
        let mut collect = Collect(Vec::new());
        self.visit(&mut collect);
        let mut read = HashMap::with_capacity(collect.0.len());
        for (id, tensor, shape) in collect.0 {
            let data = tensor
                .into_data_async()
                .await
                .map_err(|e| Error::Execution(format!("reading a weight back: {e:?}")))?;
            let values = data
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| Error::Execution(format!("reading a weight back: {e:?}")))?;
            read.insert(id, TensorData::new(values, shape));
        }

        struct Place {
            read: HashMap<ParamId, TensorData>,
            device: Device,
        }
        impl ModuleMapper for Place {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                match self.read.remove(&param.id) {
                    Some(data) => {
                        Param::initialized(param.id, Tensor::from_data(data, &self.device))
                    }
                    None => param,
                }
            }
        }
        let mut place = Place {
            read,
            device: Device::flex(),
        };
        Ok(self.valid().map(&mut place))
    }
}
