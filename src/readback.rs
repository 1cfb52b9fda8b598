//! Reading tensors back from a device. Always asynchronous: on WebGPU a read cannot block.

use burn::tensor::Tensor;

use crate::error::{Error, Result};

pub async fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| Error::DeviceLost(format!("reading a result back failed ({})", cause(&e))))?;
    data.convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Backend(format!("unexpected result type: {e:?}")))
}

/// The failure's causes in one line, without the backtrace note the device's error carries.
fn cause(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let text = text.split("Backtrace:").next().unwrap_or_default();
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" Caused by: ", ": ")
        .trim_end_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_read_back_failure_is_said_in_one_line_without_its_backtrace_note() {
        let burns = "An error happened during execution\nCaused by:\n  the staging buffer could \
                     not be mapped: Error occurred when trying to async map a buffer\nBacktrace:\n\
                     No backtrace available";
        assert_eq!(
            super::cause(&burns),
            "An error happened during execution: the staging buffer could not be mapped: Error \
             occurred when trying to async map a buffer"
        );
    }
}
