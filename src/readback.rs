//! Reading tensors back from a device. Always asynchronous: on WebGPU a read cannot block.

use burn::tensor::Tensor;

use crate::error::{Error, Result};

pub async fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| Error::DeviceLost(format!("reading a result back failed: {e:?}")))?;
    data.convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Backend(format!("unexpected result type: {e:?}")))
}
