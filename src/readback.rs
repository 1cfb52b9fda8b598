//! Reading tensors back from a device. Always asynchronous: on WebGPU a read cannot block.

use burn::tensor::Tensor;

use crate::error::{Error, Result};

use std::cell::Cell;

thread_local! {
    static READ_BACKS: Cell<usize> = const { Cell::new(0) };
}

/// Read-backs made through [`read_f32`] on this thread so far. On a GPU each one waits for
/// everything queued before it: the benchmarks and tests count them per step.
pub fn read_backs() -> usize {
    READ_BACKS.with(Cell::get)
}

pub async fn read_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    READ_BACKS.with(|n| n.set(n.get() + 1));
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
    let line = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" Caused by: ", ": ");
    // a cause that repeats the error it explains is said once
    let mut parts: Vec<&str> = line.trim_end_matches('.').split(": ").collect();
    parts.dedup();
    parts.join(": ")
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
        let repeated = "An error happened during execution\nCaused by:\n  An error happened \
                        during execution\nCaused by:\n  The device is poisoned: The device is \
                        poisoned: Destroyed: Device was destroyed\nBacktrace:\n";
        assert_eq!(
            super::cause(&repeated),
            "An error happened during execution: The device is poisoned: Destroyed: Device was \
             destroyed"
        );
    }
}
