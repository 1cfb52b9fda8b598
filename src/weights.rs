//! Tensors of a `model.safetensors` file, checked against the shapes the configuration implies
//! and converted to f32 (f16 and bf16 checkpoints are computed in f32).

use burn::tensor::TensorData;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

pub struct Weights<'a> {
    file: String,
    tensors: SafeTensors<'a>,
}

impl<'a> Weights<'a> {
    /// Parses the header and tensor table; `file` names the source in error messages.
    pub fn parse(file: impl Into<String>, bytes: &'a [u8]) -> Result<Self> {
        let file = file.into();
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| {
            Error::invalid_file(&file, format!("not a valid safetensors file ({e})"))
        })?;
        Ok(Self { file, tensors })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Values stored, over every tensor of the file.
    pub fn value_count(&self) -> usize {
        self.tensors
            .iter()
            .map(|(_, view)| view.shape().iter().product::<usize>())
            .sum()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// The stored name for `name`: itself, the legacy LayerNorm spelling (`gamma`/`beta`), or the
    /// name without the base-model prefix (`bert.`, `roberta.`, `distilbert.`), which some
    /// exports drop.
    fn resolve(&self, name: &str) -> Option<String> {
        let mut candidates = vec![name.to_string()];
        if name.contains("LayerNorm") || name.contains("layer_norm") {
            if let Some(stem) = name.strip_suffix(".weight") {
                candidates.push(format!("{stem}.gamma"));
            } else if let Some(stem) = name.strip_suffix(".bias") {
                candidates.push(format!("{stem}.beta"));
            }
        }
        for prefix in ["bert.", "roberta.", "distilbert."] {
            if name.starts_with(prefix) {
                let stripped: Vec<String> = candidates
                    .iter()
                    .map(|c| c[prefix.len()..].to_string())
                    .collect();
                candidates.extend(stripped);
            }
        }
        candidates
            .into_iter()
            .find(|c| self.tensors.tensor(c).is_ok())
    }

    /// The stored shape of `name`.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let stored = self.resolve(name)?;
        Some(self.tensors.tensor(&stored).ok()?.shape().to_vec())
    }

    /// The name and dtype under which `name` is stored.
    pub fn stored(&self, name: &str) -> Option<(String, Dtype)> {
        let stored = self.resolve(name)?;
        let dtype = self.tensors.tensor(&stored).ok()?.dtype();
        Some((stored, dtype))
    }

    /// The tensor `name` as f32 data of exactly `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<TensorData> {
        Ok(TensorData::new(self.values(name, shape)?, shape.to_vec()))
    }

    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let stored = self.resolve(name).ok_or_else(|| Error::MissingTensor {
            file: self.file.clone(),
            tensor: name.to_string(),
            expected: shape.to_vec(),
        })?;
        let view = self
            .tensors
            .tensor(&stored)
            .map_err(|e| Error::invalid_file(&self.file, format!("tensor `{stored}`: {e}")))?;
        if view.shape() != shape {
            return Err(Error::TensorShape {
                file: self.file.clone(),
                tensor: stored,
                found: view.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
        to_f32(view.dtype(), view.data()).ok_or_else(|| Error::TensorDtype {
            file: self.file.clone(),
            tensor: stored.clone(),
            dtype: format!("{:?}", view.dtype()),
        })
    }

    /// A `[out, in]` matrix as stored by PyTorch's `Linear`, returned as `[in, out]`, the layout
    /// burn's `linear` multiplies with.
    pub fn linear_weight(&self, name: &str, d_in: usize, d_out: usize) -> Result<TensorData> {
        let values = self.values(name, &[d_out, d_in])?;
        let mut transposed = vec![0f32; values.len()];
        for (o, row) in values.chunks_exact(d_in).enumerate() {
            for (i, v) in row.iter().enumerate() {
                transposed[i * d_out + o] = *v;
            }
        }
        Ok(TensorData::new(transposed, vec![d_in, d_out]))
    }
}

/// A tensor to be written: name, dtype, shape and its bytes in that dtype.
pub type StoredTensor = (String, Dtype, Vec<usize>, Vec<u8>);

/// A safetensors file of `tensors`, with the `format: pt` metadata transformers writes.
pub fn serialize(tensors: &[StoredTensor]) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Backend(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Backend(format!("cannot write safetensors: {e}")))
}

/// A safetensors file with every floating-point tensor stored as `dtype` (f32, f16 or bf16),
/// names and shapes unchanged.
pub fn converted(bytes: &[u8], dtype: Dtype) -> Result<Vec<u8>> {
    let weights = Weights::parse("model.safetensors", bytes)?;
    let mut names: Vec<String> = weights
        .tensors
        .names()
        .into_iter()
        .map(str::to_string)
        .collect();
    names.sort();
    let tensors = names
        .into_iter()
        .map(|name| {
            let view = weights
                .tensors
                .tensor(&name)
                .map_err(|e| Error::invalid_file("model.safetensors", e))?;
            let (shape, stored) = (view.shape().to_vec(), view.dtype());
            match to_f32(stored, view.data()).and_then(|v| from_f32(dtype, &v)) {
                Some(bytes) => Ok((name, dtype, shape, bytes)),
                None => Ok((name, stored, shape, view.data().to_vec())),
            }
        })
        .collect::<Result<Vec<StoredTensor>>>()?;
    serialize(&tensors)
}

/// f32 values encoded as `dtype` (one of those `to_f32` reads), little-endian.
pub fn from_f32(dtype: Dtype, values: &[f32]) -> Option<Vec<u8>> {
    Some(match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::F64 => values
            .iter()
            .flat_map(|v| (*v as f64).to_le_bytes())
            .collect(),
        _ => return None,
    })
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")) as f32)
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_count_counts_every_tensors_elements_whatever_its_dtype() {
        let tensors: Vec<StoredTensor> = vec![
            ("a".into(), Dtype::F32, vec![2, 3], vec![0; 24]),
            ("b".into(), Dtype::F16, vec![5], vec![0; 10]),
            ("c".into(), Dtype::BF16, vec![1, 1, 4], vec![0; 8]),
        ];
        let bytes = serialize(&tensors).unwrap();
        assert_eq!(
            Weights::parse("m", &bytes).unwrap().value_count(),
            6 + 5 + 4
        );
        let empty = serialize(&[]).unwrap();
        assert_eq!(Weights::parse("m", &empty).unwrap().value_count(), 0);
    }
}
