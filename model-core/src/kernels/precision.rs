//! The arithmetic of the fused CPU stack's matrix products: f32, or int8 for a model
//! exported with `--dtype int8` (see [`super::quantized`] for the int8 contract).

/// The arithmetic of the projections' matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulPrecision {
    /// f32 throughout.
    #[default]
    F32,
    /// 8-bit integers: weights per output column, inputs per row, sums in i32
    /// ([`super::quantized`]). What an int8 export was made for: the precision class
    /// of ONNX `q8` models, and in the browser several times the f32 kernel's rate.
    Int8,
}

impl MatmulPrecision {
    /// The default for a checkpoint: int8 where its matrices were stored in int8 and
    /// this is the browser. Native builds compute such a model in f32 unless told
    /// otherwise: there gemm's AVX-512 f32 kernels on every core are about twice as
    /// fast as the int8 kernel (AVX-512 VNNI on 128-bit lanes) and seven times the
    /// portable one, and the answers agree to within int8's rounding (`trainer
    /// evaluate --products int8` computes the page's arithmetic).
    pub fn for_checkpoint(stores_int8: bool) -> Self {
        if stores_int8 && cfg!(target_family = "wasm") {
            Self::Int8
        } else {
            Self::F32
        }
    }
}

impl std::str::FromStr for MatmulPrecision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "int8" | "i8" => Ok(Self::Int8),
            other => Err(format!("unknown products `{other}` (expected f32 or int8)")),
        }
    }
}

impl std::fmt::Display for MatmulPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
        })
    }
}
