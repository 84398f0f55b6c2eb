//! `BertPooler`: dense + tanh on the final `[CLS]` hidden state.

use burn::nn::Linear;
use burn::prelude::*;

use super::{linear, load_linear};
use crate::config::BertConfig;
use crate::error::Result;
use crate::weights::Checkpoint;

/// The pooler.
#[derive(Module, Debug)]
pub struct BertPooler {
    /// `pooler.dense`.
    pub dense: Linear,
}

impl BertPooler {
    /// Fresh weights.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            dense: linear(config, h, h, device),
        }
    }

    /// Weights from `pooler.dense`.
    pub fn load(config: &BertConfig, ckpt: &mut Checkpoint, device: &Device) -> Result<Self> {
        let h = config.hidden_size;
        Ok(Self {
            dense: load_linear(ckpt, "pooler.dense", h, h, device)?,
        })
    }

    /// `[batch, seq, hidden]` → `[batch, hidden]`.
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [batch, _, h] = hidden.dims();
        self.forward_cls(hidden.narrow(1, 0, 1).reshape([batch, h]))
    }

    /// `[batch, hidden]` `[CLS]` states → `[batch, hidden]`.
    pub fn forward_cls(&self, cls: Tensor<2>) -> Tensor<2> {
        self.dense.forward(cls).tanh()
    }
}
