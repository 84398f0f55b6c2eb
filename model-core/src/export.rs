//! Writing a model back out with Hugging Face names, so `transformers` loads what we
//! trained unchanged: the fused QKV projection is split again and burn's `[in, out]`
//! linear weights are transposed back to PyTorch's `[out, in]`.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;

use crate::error::{Error, Result};
use crate::hf_names::{QKV_PARTS, qkv_name, split_qkv};
use crate::model::BertForSequenceClassification;
use crate::weights::transpose;

/// One named tensor: name, shape, row-major f32 values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

fn values<const D: usize>(p: &Param<Tensor<D>>) -> Result<(Vec<usize>, Vec<f32>)> {
    let t = p.val();
    let shape = t.dims().to_vec();
    let data = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    Ok((shape, data))
}

fn push_linear(out: &mut Vec<NamedTensor>, name: &str, lin: &Linear) -> Result<()> {
    let (shape, w) = values(&lin.weight)?;
    let (d_in, d_out) = (shape[0], shape[1]);
    out.push((
        format!("{name}.weight"),
        vec![d_out, d_in],
        transpose(&w, d_in, d_out),
    ));
    if let Some(b) = &lin.bias {
        let (_, b) = values(b)?;
        out.push((format!("{name}.bias"), vec![d_out], b));
    }
    Ok(())
}

fn push_layer_norm(out: &mut Vec<NamedTensor>, name: &str, ln: &LayerNorm) -> Result<()> {
    let (shape, g) = values(&ln.gamma)?;
    out.push((format!("{name}.LayerNorm.weight"), shape.clone(), g));
    if let Some(beta) = &ln.beta {
        let (_, b) = values(beta)?;
        out.push((format!("{name}.LayerNorm.bias"), shape, b));
    }
    Ok(())
}

/// The model's tensors under the names `BertForSequenceClassification.save_pretrained` uses.
pub fn hf_state_dict(model: &BertForSequenceClassification) -> Result<Vec<NamedTensor>> {
    let mut out = Vec::new();
    let e = &model.bert.embeddings;
    for (name, emb) in [
        ("word_embeddings", &e.word_embeddings),
        ("position_embeddings", &e.position_embeddings),
        ("token_type_embeddings", &e.token_type_embeddings),
    ] {
        let (shape, w) = values(&emb.weight)?;
        out.push((format!("bert.embeddings.{name}.weight"), shape, w));
    }
    push_layer_norm(&mut out, "bert.embeddings", &e.layer_norm)?;
    for (i, layer) in model.bert.encoder.layers.iter().enumerate() {
        let p = format!("bert.encoder.layer.{i}");
        let (shape, w) = values(&layer.attention.qkv.weight)?;
        let h = shape[0];
        debug_assert_eq!(shape[1], 3 * h);
        let (_, b) = values(layer.attention.qkv.bias.as_ref().expect("qkv has a bias"))?;
        let split = split_qkv(&w, h);
        for (k, (part, wt)) in QKV_PARTS.iter().zip(split).enumerate() {
            let name = qkv_name(&p, part);
            out.push((format!("{name}.weight"), vec![h, h], wt));
            out.push((
                format!("{name}.bias"),
                vec![h],
                b[k * h..(k + 1) * h].to_vec(),
            ));
        }
        push_linear(
            &mut out,
            &format!("{p}.attention.output.dense"),
            &layer.attention.output,
        )?;
        push_layer_norm(
            &mut out,
            &format!("{p}.attention.output"),
            &layer.attention.layer_norm,
        )?;
        push_linear(
            &mut out,
            &format!("{p}.intermediate.dense"),
            &layer.intermediate,
        )?;
        push_linear(&mut out, &format!("{p}.output.dense"), &layer.output)?;
        push_layer_norm(&mut out, &format!("{p}.output"), &layer.layer_norm)?;
    }
    push_linear(&mut out, "bert.pooler.dense", &model.bert.pooler.dense)?;
    push_linear(&mut out, "classifier", &model.classifier)?;
    Ok(out)
}

/// How weights are stored in an exported safetensors file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    /// Full precision, what `transformers` and the trainer use.
    #[default]
    F32,
    /// Half precision: half the bytes, decoded to f32 at load time.
    F16,
    /// Symmetric int8 with one f32 scale per row (`<name>.qscale`) for matrices
    /// (embedding tables and linear weights except the classifier's); vectors and the
    /// classifier stay f32. A quarter of the bytes, decoded to f32 at load time.
    Int8,
    /// `Int8`, with the word-embedding table in 4 bits instead
    /// ([`crate::kernels::quantized::int4`]: one scale per group of 32 values, the
    /// packed bytes stored as U8): the smallest download, the same int8 products.
    #[serde(rename = "int8-emb4")]
    Int8Emb4,
}

impl std::str::FromStr for WeightDtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "int8" | "i8" => Ok(Self::Int8),
            "int8-emb4" => Ok(Self::Int8Emb4),
            other => Err(Error::InvalidArgument(format!(
                "unknown dtype `{other}` (expected f32, f16, int8 or int8-emb4)"
            ))),
        }
    }
}

impl std::fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Int8 => "int8",
            Self::Int8Emb4 => "int8-emb4",
        })
    }
}

/// Int8 per row of a `[rows, cols]` matrix (a Hugging Face `[out, in]` weight: one
/// scale per output channel), by the rule the int8 products share
/// ([`crate::kernels::quantized::rule`]).
pub fn quantize_rows(data: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let cols = data.len() / rows.max(1);
    let mut q = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(rows);
    for row in data.chunks_exact(cols.max(1)) {
        let (values, scale) = crate::kernels::quantized::rule::quantize_channel(row);
        q.extend(values);
        scales.push(scale);
    }
    (q, scales)
}

fn is_quantized(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2 && !name.starts_with("classifier.")
}

/// The one table `Int8Emb4` stores in 4 bits (a Hugging Face name).
const EMB4_TENSOR: &str = "bert.embeddings.word_embeddings.weight";

/// Serialise named tensors as a safetensors file (f32).
pub fn to_safetensors(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    to_safetensors_as(tensors, WeightDtype::F32)
}

/// Serialise named tensors as a safetensors file with weights stored as `dtype`.
pub fn to_safetensors_as(tensors: &[NamedTensor], dtype: WeightDtype) -> Result<Vec<u8>> {
    use safetensors::Dtype;
    let f32_bytes = |d: &[f32]| -> Vec<u8> { d.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let mut bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (n, s, d) in tensors {
        match dtype {
            WeightDtype::F32 => bytes.push((n.clone(), Dtype::F32, s.clone(), f32_bytes(d))),
            WeightDtype::F16 => bytes.push((
                n.clone(),
                Dtype::F16,
                s.clone(),
                d.iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
            )),
            WeightDtype::Int8Emb4
                if n == EMB4_TENSOR
                    && s.len() == 2
                    && s[1].is_multiple_of(crate::kernels::quantized::int4::GROUP) =>
            {
                let (packed, scales) = crate::kernels::quantized::int4::quantize(d, s[1]);
                bytes.push((n.clone(), Dtype::U8, vec![s[0], s[1] / 2], packed));
                let groups = s[1] / crate::kernels::quantized::int4::GROUP;
                bytes.push((
                    format!("{n}{}", crate::weights::QSCALE_SUFFIX),
                    Dtype::F32,
                    vec![s[0], groups],
                    f32_bytes(&scales),
                ));
            }
            WeightDtype::Int8 | WeightDtype::Int8Emb4 if is_quantized(n, s) => {
                let (q, scales) = quantize_rows(d, s[0]);
                bytes.push((
                    n.clone(),
                    Dtype::I8,
                    s.clone(),
                    q.iter().map(|&v| v as u8).collect(),
                ));
                bytes.push((
                    format!("{n}{}", crate::weights::QSCALE_SUFFIX),
                    Dtype::F32,
                    vec![s[0]],
                    f32_bytes(&scales),
                ));
            }
            WeightDtype::Int8 | WeightDtype::Int8Emb4 => {
                bytes.push((n.clone(), Dtype::F32, s.clone(), f32_bytes(d)))
            }
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, t, s, b)| {
            safetensors::tensor::TensorView::new(*t, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Execution(format!("tensor {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::Execution(e.to_string()))
}
