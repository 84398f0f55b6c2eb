//! Writing a model back out with Hugging Face names, so `transformers` loads what we
//! trained unchanged: the fused QKV projection is split again and burn's `[in, out]`
//! linear weights are transposed back to PyTorch's `[out, in]`.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;

use crate::error::{Error, Result};
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
        let (h, h3) = (shape[0], shape[1]);
        let (_, b) = values(layer.attention.qkv.bias.as_ref().expect("qkv has a bias"))?;
        for (k, part) in ["query", "key", "value"].iter().enumerate() {
            // Columns k·h .. (k+1)·h of the fused [h, 3h] weight, as PyTorch's [out, in].
            let mut wt = vec![0.0f32; h * h];
            for r in 0..h {
                for c in 0..h {
                    wt[c * h + r] = w[r * h3 + k * h + c];
                }
            }
            out.push((format!("{p}.attention.self.{part}.weight"), vec![h, h], wt));
            out.push((
                format!("{p}.attention.self.{part}.bias"),
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

/// Serialise named tensors as a safetensors file (f32).
pub fn to_safetensors(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                s.clone(),
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Execution(format!("tensor {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::Execution(e.to_string()))
}
