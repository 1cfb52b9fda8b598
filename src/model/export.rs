//! Writing a model back as `model.safetensors`: the checkpoint's own tensor names, layouts and
//! dtypes, so that transformers and this loader read the tuned model as they read the original.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

use super::{CheckpointTensor, MaskedLm};
use crate::error::{Error, Result};
use crate::readback::read_f32;
use crate::weights::{from_f32, serialize};

/// Every float parameter, flattened, by id.
struct Collect(HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.0.insert(param.id, value.reshape([n]));
    }
}

/// A parameter's values in the checkpoint's layout (linear weights back to `[out, in]`).
async fn stored_values(entry: &CheckpointTensor, tensor: Tensor<1>) -> Result<Vec<f32>> {
    let values = read_f32(tensor).await?;
    if !entry.transposed {
        return Ok(values);
    }
    let (d_out, d_in) = (entry.shape[0], entry.shape[1]);
    let mut stored = vec![0f32; values.len()];
    for i in 0..d_in {
        for o in 0..d_out {
            stored[o * d_in + i] = values[i * d_out + o];
        }
    }
    Ok(stored)
}

impl MaskedLm {
    fn parameters(&self) -> HashMap<ParamId, Tensor<1>> {
        let mut collect = Collect(HashMap::new());
        self.visit(&mut collect);
        collect.0
    }

    /// The tensor a checkpoint stores under `name`, in its layout, as the model holds it now.
    pub async fn checkpoint_tensor(&self, name: &str) -> Result<Option<Vec<f32>>> {
        let Some(entry) = self.checkpoint.iter().find(|e| e.name == name) else {
            return Ok(None);
        };
        match self.parameters().remove(&entry.id) {
            Some(tensor) => Ok(Some(stored_values(entry, tensor).await?)),
            None => Ok(None),
        }
    }

    /// The weights as a safetensors file (read back from the device asynchronously).
    pub async fn to_safetensors(&self) -> Result<Vec<u8>> {
        self.write_safetensors(false).await
    }

    /// The weights exactly as held, every tensor in f32 whatever the checkpoint's dtype: for a
    /// saved training run, which must go on from the same numbers.
    pub async fn to_safetensors_f32(&self) -> Result<Vec<u8>> {
        self.write_safetensors(true).await
    }

    /// Takes the checkpoint dtypes of `original` (the same architecture and names), so that
    /// weights read back from an f32 file of a training run are exported as the original was.
    pub fn keep_dtypes_of(&mut self, original: &MaskedLm) {
        for entry in &mut self.checkpoint {
            if let Some(o) = original.checkpoint.iter().find(|o| o.name == entry.name) {
                entry.dtype = o.dtype;
            }
        }
    }

    async fn write_safetensors(&self, as_f32: bool) -> Result<Vec<u8>> {
        let mut parameters = self.parameters();
        let mut tensors = Vec::with_capacity(self.checkpoint.len());
        for entry in &self.checkpoint {
            let tensor = parameters.remove(&entry.id).ok_or_else(|| {
                Error::Backend(format!(
                    "parameter for `{}` not found in the model",
                    entry.name
                ))
            })?;
            let values = stored_values(entry, tensor).await?;
            let dtype = if as_f32 {
                safetensors::Dtype::F32
            } else {
                entry.dtype
            };
            let bytes = from_f32(dtype, &values).ok_or_else(|| {
                Error::Backend(format!("cannot write `{}` as {dtype:?}", entry.name))
            })?;
            tensors.push((entry.name.clone(), dtype, entry.shape.clone(), bytes));
        }
        serialize(&tensors)
    }
}
