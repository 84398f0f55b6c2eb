//! Reading Hugging Face checkpoints (`model.safetensors`, `pytorch_model.bin`) into a
//! name → tensor map that the model's `load` functions take from.
//!
//! Names are normalised once here so the model code sees one scheme: the `bert.`
//! prefix that `BertForSequenceClassification`/`BertForPreTraining` add is stripped and
//! the legacy TF-era `LayerNorm.gamma`/`LayerNorm.beta` become `weight`/`bias`. Every
//! tensor the model takes is marked used, so what is left over (`cls.predictions.*`,
//! `position_ids`) can be reported instead of silently ignored.

use std::collections::{BTreeSet, HashMap};

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};

/// One tensor as stored in the checkpoint, converted to f32.
#[derive(Debug, Clone)]
pub struct RawTensor {
    /// Dimensions, outermost first (PyTorch order).
    pub shape: Vec<usize>,
    /// Row-major values (empty when the dtype is not a float type).
    pub data: Vec<f32>,
    /// The dtype as stored (`F32`, `F16`, `BF16`, `F64`, `I64`...).
    pub dtype: String,
}

fn is_float(dtype: &str) -> bool {
    matches!(dtype, "F32" | "F16" | "BF16" | "F64")
}

/// All tensors of one checkpoint file, by normalised name.
#[derive(Debug)]
pub struct Checkpoint {
    source_name: String,
    /// Prefix the file's names carried (`bert.`), to name tensors as the file does in errors.
    prefix: String,
    tensors: HashMap<String, RawTensor>,
    used: BTreeSet<String>,
    /// Whether some tensors were stored as int8 (and decoded to f32 here).
    int8: bool,
}

/// What loading left aside: tensors in the file that the model does not use, and
/// parameters the file did not have and that were freshly initialised instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Checkpoint tensors the model did not take, with the file's own names.
    pub unused: Vec<String>,
    /// Model parameters that were initialised because the file lacks them
    /// (the classifier head of a not-yet-fine-tuned backbone).
    pub initialized: Vec<String>,
}

fn normalise(name: &str) -> (String, bool) {
    let (rest, had_prefix) = match name.strip_prefix("bert.") {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    let rest = if let Some(base) = rest.strip_suffix("LayerNorm.gamma") {
        format!("{base}LayerNorm.weight")
    } else if let Some(base) = rest.strip_suffix("LayerNorm.beta") {
        format!("{base}LayerNorm.bias")
    } else {
        rest.to_string()
    };
    (rest, had_prefix)
}

fn to_f32(source_name: &str, name: &str, dtype: &str, bytes: &[u8]) -> Result<Vec<f32>> {
    let width = match dtype {
        "F32" => 4,
        "F16" | "BF16" => 2,
        "F64" => 8,
        _ => {
            return Err(Error::UnsupportedDtype {
                source_name: source_name.into(),
                name: name.into(),
                dtype: dtype.into(),
            });
        }
    };
    if !bytes.len().is_multiple_of(width) {
        return Err(Error::Checkpoint {
            source_name: source_name.into(),
            message: format!(
                "tensor `{name}` has {} bytes, not a multiple of {width}",
                bytes.len()
            ),
        });
    }
    let out = match dtype {
        "F32" => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "F16" => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        "BF16" => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32)
            .collect(),
    };
    Ok(out)
}

/// Name suffix of the per-row scales of an int8 tensor.
pub const QSCALE_SUFFIX: &str = ".qscale";

/// `q[r, c] * scale[r]`, checking that the scales match the rows.
fn dequantize_rows(
    source_name: &str,
    name: &str,
    shape: &[usize],
    q: &[u8],
    scale: &[f32],
) -> Result<Vec<f32>> {
    let rows = shape.first().copied().unwrap_or(1).max(1);
    let cols = q.len() / rows;
    if scale.len() != rows || cols * rows != q.len() {
        return Err(Error::Checkpoint {
            source_name: source_name.into(),
            message: format!(
                "int8 tensor `{name}` of shape {shape:?} has {} scales in `{name}{QSCALE_SUFFIX}` (expected one per row, {rows})",
                scale.len()
            ),
        });
    }
    // Into a buffer of the final size, row by row: the loop vectorises, where
    // collecting a flattened iterator grew the vector push by push.
    let mut out = vec![0.0f32; q.len()];
    let width = cols.max(1);
    for ((dst, row), &s) in out
        .chunks_exact_mut(width)
        .zip(q.chunks_exact(width))
        .zip(scale)
    {
        for (d, &b) in dst.iter_mut().zip(row) {
            *d = (b as i8) as f32 * s;
        }
    }
    Ok(out)
}

impl Checkpoint {
    /// Build from already-decoded tensors (used by tests and by the loaders below).
    pub fn from_tensors(
        source_name: impl Into<String>,
        tensors: impl IntoIterator<Item = (String, RawTensor)>,
    ) -> Self {
        let mut map = HashMap::new();
        let mut prefix = String::new();
        for (name, t) in tensors {
            let (norm, had_prefix) = normalise(&name);
            if had_prefix {
                prefix = "bert.".into();
            }
            map.insert(norm, t);
        }
        Checkpoint {
            source_name: source_name.into(),
            prefix,
            tensors: map,
            used: BTreeSet::new(),
            int8: false,
        }
    }

    /// Parse a safetensors file held in memory. Works in the browser too.
    pub fn from_safetensors_bytes(bytes: &[u8], source_name: &str) -> Result<Self> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| Error::Checkpoint {
            source_name: source_name.into(),
            message: format!("not a valid safetensors file ({e}); is it truncated?"),
        })?;
        // Int8 exports store `name` as I8 with one f32 scale per row in `name.qscale`
        // (see `export::WeightDtype::Int8`), and `int8-emb4` the word embeddings as U8
        // nibbles with one scale per group: decode them back to f32 here.
        let scales: HashMap<String, Vec<f32>> = st
            .tensors()
            .into_iter()
            .filter_map(|(name, view)| {
                let base = name.strip_suffix(QSCALE_SUFFIX)?.to_string();
                let dtype = format!("{:?}", view.dtype());
                Some(to_f32(source_name, &name, &dtype, view.data()).map(|s| (base, s)))
            })
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(st.len());
        let mut int8 = false;
        for (name, view) in st.tensors() {
            if name.ends_with(QSCALE_SUFFIX) {
                continue;
            }
            let dtype = format!("{:?}", view.dtype());
            let stored = view.shape().to_vec();
            let tensor = match (dtype.as_str(), scales.get(&name)) {
                // `--dtype int8-emb4`: a table packed two 4-bit values per byte.
                ("U8", Some(scale)) => {
                    let shape = match stored[..] {
                        [rows, half] => vec![rows, half * 2],
                        _ => stored.clone(),
                    };
                    let cols = shape.get(1).copied().unwrap_or(0);
                    let data = crate::kernels::quantized::int4::dequantize(view.data(), scale, cols)
                        .map_err(|message| Error::Checkpoint {
                            source_name: source_name.into(),
                            message: format!(
                                "4-bit tensor `{name}` stored as {stored:?} with `{name}{QSCALE_SUFFIX}`: {message}"
                            ),
                        })?;
                    RawTensor {
                        shape,
                        data,
                        dtype: "F32".into(),
                    }
                }
                ("I8", Some(scale)) => {
                    int8 = true;
                    let data = dequantize_rows(source_name, &name, &stored, view.data(), scale)?;
                    RawTensor {
                        shape: stored,
                        data,
                        dtype: "F32".into(),
                    }
                }
                // Integer buffers (`embeddings.position_ids`) are kept without data: they
                // are reported as unused, and only an error if the model asks for one.
                _ => {
                    let data = if is_float(&dtype) {
                        to_f32(source_name, &name, &dtype, view.data())?
                    } else {
                        Vec::new()
                    };
                    RawTensor {
                        shape: stored,
                        data,
                        dtype,
                    }
                }
            };
            out.push((name, tensor));
        }
        let mut ckpt = Self::from_tensors(source_name, out);
        ckpt.int8 = int8;
        Ok(ckpt)
    }

    /// Whether the file stored some matrices as int8 with per-row scales (an
    /// `--dtype int8` export): the model then computes its projections in int8
    /// ([`crate::ops::MatmulPrecision`]).
    pub fn stores_int8(&self) -> bool {
        self.int8
    }

    /// Read `model.safetensors` (or any safetensors file).
    #[cfg(feature = "native")]
    pub fn from_safetensors_file(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_safetensors_bytes(&bytes, &path.display().to_string())
    }

    /// Read a PyTorch `pytorch_model.bin` (zip or legacy pickle) state dict.
    #[cfg(feature = "native")]
    pub fn from_pytorch_file(path: &std::path::Path) -> Result<Self> {
        use burn_store::pytorch_reader::PytorchReader;
        let source_name = path.display().to_string();
        let ckpt_err = |message: String| Error::Checkpoint {
            source_name: source_name.clone(),
            message,
        };
        let reader = PytorchReader::new(path).map_err(|e| ckpt_err(e.to_string()))?;
        let mut out = Vec::new();
        for (name, t) in reader.into_tensors() {
            let dtype = format!("{:?}", t.dtype()).to_uppercase();
            let data = if is_float(&dtype) {
                let bytes = t
                    .read()
                    .map_err(|e| ckpt_err(format!("tensor `{name}`: {e}")))?;
                to_f32(&source_name, &name, &dtype, &bytes)?
            } else {
                Vec::new()
            };
            out.push((
                name,
                RawTensor {
                    shape: t.shape().to_vec(),
                    data,
                    dtype,
                },
            ));
        }
        Ok(Self::from_tensors(source_name, out))
    }

    /// The file these tensors came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Whether the checkpoint holds `name` (normalised, without `bert.`).
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Take a tensor, checking its shape against what the config implies.
    pub fn take_raw(&mut self, name: &str, expected: &[usize]) -> Result<RawTensor> {
        let Some(t) = self.tensors.get(name) else {
            let found_like = self.tensors.keys().min().map(|k| self.display_name(k));
            return Err(Error::MissingTensor {
                source_name: self.source_name.clone(),
                name: self.display_name(name),
                expected: expected.to_vec(),
                found_like,
            });
        };
        if !is_float(&t.dtype) {
            return Err(Error::UnsupportedDtype {
                source_name: self.source_name.clone(),
                name: self.display_name(name),
                dtype: t.dtype.clone(),
            });
        }
        if t.shape != expected {
            return Err(Error::ShapeMismatch {
                source_name: self.source_name.clone(),
                name: self.display_name(name),
                expected: expected.to_vec(),
                found: t.shape.clone(),
            });
        }
        self.used.insert(name.to_string());
        // Each tensor is taken once: moved out rather than copied (a model's worth of
        // memory and time while opening it).
        Ok(self.tensors.remove(name).expect("looked up above"))
    }

    /// Take a tensor onto `device` with the given rank.
    pub fn take<const D: usize>(
        &mut self,
        name: &str,
        expected: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let raw = self.take_raw(name, &expected)?;
        Ok(Tensor::from_data(
            TensorData::new(raw.data, expected),
            device,
        ))
    }

    /// Take a PyTorch `nn.Linear` weight (`[out, in]`) as burn's `[in, out]`.
    pub fn take_linear_weight(
        &mut self,
        name: &str,
        d_out: usize,
        d_in: usize,
        device: &Device,
    ) -> Result<Tensor<2>> {
        let raw = self.take_raw(name, &[d_out, d_in])?;
        Ok(linear_weight(raw.data, d_out, d_in, device))
    }

    /// Names as the file spells them, for messages.
    fn display_name(&self, normalised: &str) -> String {
        if normalised.starts_with("classifier.") || normalised.starts_with("cls.") {
            normalised.to_string()
        } else {
            format!("{}{normalised}", self.prefix)
        }
    }

    /// Finish loading: the tensors left unused, with the file's names.
    pub fn unused(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| !self.used.contains(*k))
            .map(|k| self.display_name(k))
            .collect();
        names.sort();
        names
    }
}

/// burn's `[in, out]` weight of the PyTorch `[out, in]` rows `data`, contiguous. (A
/// transposed view would move nothing while opening, but gemm's products with a
/// column-major weight cost a single review about a fifth more natively.)
pub fn linear_weight(data: Vec<f32>, d_out: usize, d_in: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(transpose(&data, d_out, d_in), [d_in, d_out]),
        device,
    )
}

/// Row-major transpose of an `rows × cols` matrix, in square tiles so that reads and
/// writes both stay within a few cache lines at a time: element by element, every
/// write to a 1536-wide matrix landed on a line of its own.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    assert_eq!(data.len(), rows * cols, "transpose shape");
    let mut out = vec![0.0; data.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                let src = &data[r * cols..(r + 1) * cols];
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = src[c];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_prefix_and_legacy_layer_norm_names() {
        assert_eq!(
            normalise("bert.embeddings.LayerNorm.gamma"),
            ("embeddings.LayerNorm.weight".into(), true)
        );
        assert_eq!(
            normalise("encoder.layer.0.output.LayerNorm.beta"),
            ("encoder.layer.0.output.LayerNorm.bias".into(), false)
        );
        assert_eq!(
            normalise("classifier.weight"),
            ("classifier.weight".into(), false)
        );
    }

    #[test]
    fn transpose_crosses_tile_edges() {
        let (rows, cols) = (70, 45);
        let data: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = transpose(&data, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], data[r * cols + c]);
            }
        }
    }

    #[test]
    fn transpose_is_row_major() {
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }

    #[test]
    fn missing_and_mismatched_tensors_are_named() {
        let t = RawTensor {
            shape: vec![2, 3],
            data: vec![0.0; 6],
            dtype: "F32".into(),
        };
        let mut c =
            Checkpoint::from_tensors("m.safetensors", [("bert.pooler.dense.weight".into(), t)]);
        let e = c
            .take_raw("pooler.dense.weight", &[3, 3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bert.pooler.dense.weight") && e.contains("[2, 3]") && e.contains("[3, 3]"),
            "{e}"
        );
        let e = c
            .take_raw("pooler.dense.bias", &[3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.safetensors") && e.contains("bert.pooler.dense.bias"),
            "{e}"
        );
        assert_eq!(c.unused(), vec!["bert.pooler.dense.weight"]);
    }

    #[test]
    fn truncated_safetensors_is_an_error_not_a_panic() {
        let e =
            Checkpoint::from_safetensors_bytes(&[8, 0, 0, 0, 0, 0, 0, 0, b'{'], "cut.safetensors")
                .unwrap_err()
                .to_string();
        assert!(e.contains("cut.safetensors"), "{e}");
    }
}
