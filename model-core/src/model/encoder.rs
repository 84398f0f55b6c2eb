//! The post-LayerNorm transformer layers: attention, then a GELU feed-forward block,
//! each followed by residual + LayerNorm.

use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::{gelu_approximate, relu};

use super::{SelfAttention, layer_norm, linear, load_layer_norm, load_linear};
use crate::config::{Activation, BertConfig};
use crate::error::Result;
use crate::ops::{self, ExecutionPath, LayerWeights, MatmulPrecision};
use crate::weights::Checkpoint;

/// One encoder layer (`BertLayer`).
#[derive(Module, Debug)]
pub struct BertLayer {
    /// Self-attention with its output LayerNorm.
    pub attention: SelfAttention,
    /// `intermediate.dense`: hidden → intermediate.
    pub intermediate: Linear,
    /// `output.dense`: intermediate → hidden.
    pub output: Linear,
    /// `output.LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Residual-branch dropout (training only).
    pub dropout: Dropout,
    /// Feed-forward activation.
    #[module(skip)]
    pub activation: Activation,
    /// The LayerNorms' epsilon (burn keeps its copy private; the fused kernel needs it).
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl BertLayer {
    /// Fresh weights.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        Self {
            attention: SelfAttention::init(config, device),
            intermediate: linear(config, h, i, device),
            output: linear(config, i, h, device),
            layer_norm: layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            activation: config.hidden_act,
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// Weights from `encoder.layer.{index}.*`.
    pub fn load(
        config: &BertConfig,
        ckpt: &mut Checkpoint,
        index: usize,
        device: &Device,
    ) -> Result<Self> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let p = format!("encoder.layer.{index}");
        Ok(Self {
            attention: SelfAttention::load(config, ckpt, &p, device)?,
            intermediate: load_linear(ckpt, &format!("{p}.intermediate.dense"), h, i, device)?,
            output: load_linear(ckpt, &format!("{p}.output.dense"), i, h, device)?,
            layer_norm: load_layer_norm(config, ckpt, &format!("{p}.output"), device)?,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            activation: config.hidden_act,
            layer_norm_eps: config.layer_norm_eps,
        })
    }

    /// `[batch, seq, hidden]` → same shape.
    pub fn forward(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        self.forward_on(ExecutionPath::of(&x), x, padding_mask)
    }

    /// [`Self::forward`] on a path already chosen for the whole pass.
    fn forward_on(
        &self,
        path: ExecutionPath,
        x: Tensor<3>,
        padding_mask: Tensor<2, Bool>,
    ) -> Tensor<3> {
        let seq = x.dims()[1];
        let x = self.attention.forward_queries(path, x, padding_mask, seq);
        self.feed_forward(path, x)
    }

    /// [`Self::forward`] at the first position only: `[batch, 1, hidden]`, attending
    /// over every key (see [`BertEncoder::forward_first_token`]).
    pub fn forward_first(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        let path = ExecutionPath::of(&x);
        let x = self.attention.forward_queries(path, x, padding_mask, 1);
        self.feed_forward(path, x)
    }

    /// The feed-forward block with its residual and LayerNorm.
    fn feed_forward(&self, path: ExecutionPath, x: Tensor<3>) -> Tensor<3> {
        let h = match self.activation {
            Activation::Gelu => ops::linear_gelu(path, &self.intermediate, x.clone()),
            Activation::GeluTanh => {
                gelu_approximate(ops::linear(path, &self.intermediate, x.clone()))
            }
            Activation::Relu => relu(ops::linear(path, &self.intermediate, x.clone())),
        };
        ops::project_add_norm(
            path,
            &self.output,
            &self.dropout,
            &self.layer_norm,
            self.layer_norm_eps,
            h,
            x,
        )
    }

    /// This layer's modules as the fused CPU stack reads them.
    pub fn weights(&self) -> LayerWeights<'_> {
        let attention = &self.attention;
        LayerWeights {
            qkv: &attention.qkv,
            attention_output: &attention.output,
            attention_norm: &attention.layer_norm,
            intermediate: &self.intermediate,
            output: &self.output,
            output_norm: &self.layer_norm,
            layer_norm_eps: self.layer_norm_eps,
            heads: attention.num_heads,
            activation: self.activation,
        }
    }
}

/// The stack of layers.
#[derive(Module, Debug)]
pub struct BertEncoder {
    /// `encoder.layer.*`.
    pub layers: Vec<BertLayer>,
    /// The arithmetic of the CPU kernel's projections ([`MatmulPrecision::for_checkpoint`]:
    /// int8 in the browser for an `--dtype int8` export, f32 otherwise). Training
    /// and the GPU path always compute in f32.
    #[module(skip)]
    pub precision: MatmulPrecision,
}

impl BertEncoder {
    /// Fresh weights.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            layers: (0..config.num_hidden_layers)
                .map(|_| BertLayer::init(config, device))
                .collect(),
            precision: MatmulPrecision::F32,
        }
    }

    /// Weights from `encoder.layer.*`.
    pub fn load(config: &BertConfig, ckpt: &mut Checkpoint, device: &Device) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(config, ckpt, i, device))
            .collect::<Result<_>>()?;
        let precision = MatmulPrecision::for_checkpoint(ckpt.stores_int8());
        Ok(Self { layers, precision })
    }

    /// Every layer's modules as the fused CPU stack reads them.
    pub fn weights(&self) -> Vec<LayerWeights<'_>> {
        self.layers.iter().map(BertLayer::weights).collect()
    }

    /// The path a forward pass over `x` takes (see [`crate::ops`]).
    pub fn execution_path(&self, x: &Tensor<3>) -> ExecutionPath {
        ExecutionPath::of(x)
    }

    /// Run every layer: inference on the CPU through the fused stack, everything else
    /// (and whatever the stack declines) through the modules.
    pub fn forward(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        let path = ExecutionPath::of(&x);
        let x = match ops::encoder_stack(path, &self.weights(), self.precision, x, &padding_mask) {
            Ok(y) => return y,
            Err(x) => x,
        };
        self.forward_modules_on(path, x, padding_mask)
    }

    /// The final state at each sequence's first position (`[CLS]`), `[batch, hidden]`:
    /// what the pooler reads. Same values as `forward(..)` at position 0, with the last
    /// layer computed for that position only (on every path: on the fused stack it
    /// skips what only the other positions need; for training, autodiff then has
    /// nothing to propagate through the positions nothing reads).
    pub fn forward_first_token(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<2> {
        let path = ExecutionPath::of(&x);
        let stacked =
            ops::encoder_stack_first_token(path, &self.weights(), self.precision, x, &padding_mask);
        let x = match stacked {
            Ok(y) => return y,
            Err(x) => x,
        };
        let [batch, _, hidden] = x.dims();
        let Some((last, rest)) = self.layers.split_last() else {
            return x.narrow(1, 0, 1).reshape([batch, hidden]);
        };
        let mut x = x;
        for layer in rest {
            x = layer.forward_on(path, x, padding_mask.clone());
        }
        let x = last.attention.forward_queries(path, x, padding_mask, 1);
        last.feed_forward(path, x).reshape([batch, hidden])
    }

    /// Run every layer through the modules (any backend, autodiff).
    pub fn forward_modules(&self, x: Tensor<3>, padding_mask: Tensor<2, Bool>) -> Tensor<3> {
        self.forward_modules_on(ExecutionPath::of(&x), x, padding_mask)
    }

    fn forward_modules_on(
        &self,
        path: ExecutionPath,
        mut x: Tensor<3>,
        padding_mask: Tensor<2, Bool>,
    ) -> Tensor<3> {
        for layer in &self.layers {
            x = layer.forward_on(path, x, padding_mask.clone());
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::tensor::Distribution;

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 0.5), device)
    }

    /// Non-zero biases and LayerNorm shifts, so the kernel's bias handling is exercised
    /// (fresh layers have zero biases and unit scales).
    fn perturb(layer: &mut BertLayer, device: &Device) {
        let a = &mut layer.attention;
        for linear in [
            &mut a.qkv,
            &mut a.output,
            &mut layer.intermediate,
            &mut layer.output,
        ] {
            let [d] = linear.bias.as_ref().unwrap().dims();
            linear.bias = Some(Param::from_tensor(random([d], device)));
        }
        for norm in [&mut a.layer_norm, &mut layer.layer_norm] {
            let [d] = norm.gamma.dims();
            norm.gamma = Param::from_tensor(random([d], device) + 1.0);
            norm.beta = Some(Param::from_tensor(random([d], device)));
        }
    }

    /// The classifier's path: the last layer computed for `[CLS]` only gives the same
    /// first-position states as the whole stack, with trailing padding, a hole, one
    /// real token, and a mask hiding position 0 (zeros, as the fused encoder gives).
    #[test]
    fn the_first_token_path_matches_the_full_stack() {
        let device = Device::flex();
        let config = BertConfig::tiny(50);
        let mut encoder = BertEncoder::init(&config, &device);
        for layer in &mut encoder.layers {
            perturb(layer, &device);
        }
        let (batch, seq, h) = (4, 6, config.hidden_size);
        let is_padding = |t: usize| {
            (t / seq == 1 && t % seq >= 3)
                || t == 2 * seq + 2
                || t == 3 * seq
                || (t / seq == 0 && t % seq >= 1)
        };
        let mask: Vec<bool> = (0..batch * seq).map(is_padding).collect();
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [batch, seq]), &device);
        let x = random([batch, seq, h], &device);
        let first = encoder.forward_first_token(x.clone(), mask.clone());
        let full = encoder.forward_modules(x, mask);
        let (first, full) = (
            first.into_data().try_to_vec::<f32>().unwrap(),
            full.into_data().try_to_vec::<f32>().unwrap(),
        );
        assert_eq!(first.len(), batch * h);
        for b in 0..batch {
            let got = &first[b * h..(b + 1) * h];
            if is_padding(b * seq) {
                assert!(
                    got.iter().all(|&v| v == 0.0),
                    "sequence {b}: position 0 is padding"
                );
                continue;
            }
            let want = &full[b * seq * h..(b * seq + 1) * h];
            let worst = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-4, "sequence {b}: max abs diff {worst}");
        }
    }

    #[test]
    fn the_fused_encoder_matches_the_module_path() {
        let device = Device::flex();
        for act in ["gelu", "gelu_new", "relu"] {
            let mut config = BertConfig::tiny(50);
            config.hidden_act = serde_json::from_value(serde_json::json!(act)).unwrap();
            config.layer_norm_eps = 1e-12;
            let mut encoder = BertEncoder::init(&config, &device);
            for layer in &mut encoder.layers {
                perturb(layer, &device);
            }
            let (batch, seq) = (3, 7);
            let x = random([batch, seq, config.hidden_size], &device);
            // Row 1 ends in three padding tokens; row 2 has a hole (the mask allows it).
            let is_padding = |t: usize| (t / seq == 1 && t % seq >= 4) || t == 2 * seq + 2;
            let mask: Vec<bool> = (0..batch * seq).map(is_padding).collect();
            let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [batch, seq]), &device);

            let path = ExecutionPath::of(&x);
            assert_eq!(path, ExecutionPath::FusedCpu);
            let weights = encoder.weights();
            let fused = ops::encoder_stack(path, &weights, MatmulPrecision::F32, x.clone(), &mask)
                .expect("flex f32 input takes the fused stack");
            let modules = encoder.forward_modules(x.clone(), mask.clone());
            let (fused, modules) = (
                fused.into_data().try_to_vec::<f32>().unwrap(),
                modules.into_data().try_to_vec::<f32>().unwrap(),
            );
            let h = config.hidden_size;
            let mut worst = 0.0f32;
            for (t, (a, b)) in fused.chunks(h).zip(modules.chunks(h)).enumerate() {
                if is_padding(t) {
                    // Padding: not computed on the fused path.
                    assert!(
                        a.iter().all(|&v| v == 0.0),
                        "{act}: padding row {t} not zero"
                    );
                    continue;
                }
                for (a, b) in a.iter().zip(b) {
                    worst = worst.max((a - b).abs());
                }
            }
            assert!(
                worst < 1e-4,
                "{act}: fused vs modules, max abs diff {worst}"
            );
            // The input is left as it was (the kernel works on its own copy when shared).
            let again = encoder
                .forward_modules(x, mask)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(again, modules, "{act}: input modified in place");
        }
    }

    /// Training through the first-position path: the same `[CLS]` states and the same
    /// gradients for every layer's weights as the whole stack, with padding (dropout
    /// off: the two paths draw different masks), through the training ops and through
    /// burn's ops.
    #[test]
    fn first_token_training_matches_the_full_stack() {
        // flex: the training ops; wgpu (lavapipe in CI) and ndarray: burn's generic ops.
        let mut devices = vec![Device::flex().autodiff()];
        if let Some(wgpu) = crate::backend::wgpu_for_tests("the generic training path") {
            devices.push(wgpu.device.autodiff());
        }
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // ndarray: deprecated upstream, opt-in
        devices.push(Device::ndarray().autodiff());
        for device in devices {
            let mut config = BertConfig::tiny(50);
            config.hidden_dropout_prob = 0.0;
            config.attention_probs_dropout_prob = 0.0;
            let mut encoder = BertEncoder::init(&config, &device);
            for layer in &mut encoder.layers {
                perturb(layer, &device);
            }
            let (batch, seq, h) = (3, 5, config.hidden_size);
            let mask: Vec<bool> = (0..batch * seq)
                .map(|t| t / seq == 1 && t % seq >= 2)
                .collect();
            let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [batch, seq]), &device);
            let x = random([batch, seq, h], &device);
            let weights = random([batch, h], &device);
            let grads = |first: bool| {
                let cls = if first {
                    encoder.forward_first_token(x.clone(), mask.clone())
                } else {
                    encoder
                        .forward_modules(x.clone(), mask.clone())
                        .narrow(1, 0, 1)
                        .reshape([batch, h])
                };
                let values = cls.clone().into_data().try_to_vec::<f32>().unwrap();
                let g = (cls * weights.clone()).sum().backward();
                let per_layer: Vec<Vec<f32>> = encoder
                    .layers
                    .iter()
                    .flat_map(|l| [&l.attention.qkv.weight, &l.intermediate.weight])
                    .map(|w| w.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap())
                    .collect();
                (values, per_layer)
            };
            let (full, full_grads) = grads(false);
            let (first, first_grads) = grads(true);
            let diff = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max)
            };
            assert!(diff(&full, &first) < 1e-5, "[CLS] states differ");
            for (i, (a, b)) in full_grads.iter().zip(&first_grads).enumerate() {
                let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0, "gradient {i} is all zero");
                assert!(
                    diff(a, b) < 1e-4 * scale.max(1.0),
                    "gradient {i} differs: {}",
                    diff(a, b)
                );
            }
        }
    }

    #[test]
    fn autodiff_takes_the_module_path() {
        let device = Device::flex().autodiff();
        let config = BertConfig::tiny(50);
        let encoder = BertEncoder::init(&config, &device);
        let x = Tensor::<3>::zeros([1, 2, config.hidden_size], &device);
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 2], [1, 2]), &device);
        let path = encoder.execution_path(&x);
        assert_eq!(path, ExecutionPath::CpuTraining);
        let weights = encoder.weights();
        assert!(ops::encoder_stack(path, &weights, MatmulPrecision::F32, x, &mask).is_err());
    }
}
