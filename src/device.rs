//! Opening a device natively. burn panics when a GPU adapter is missing; callers get an error.

use burn::tensor::{Device, DeviceKind, Tensor};

use crate::error::{Error, Result};

/// burn's pure-Rust CPU backend.
pub fn cpu() -> Device {
    Device::flex()
}

/// The default wgpu adapter (Vulkan, Metal or DX12), checked with a small computation.
pub fn wgpu() -> Result<Device> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| {
        let device = Device::wgpu(DeviceKind::DefaultDevice);
        let sum = Tensor::<1>::from_floats([1.0f32, 2.0], &device).sum();
        let ok = sum
            .into_data()
            .try_to_vec::<f32>()
            .map(|v| v == [3.0])
            .unwrap_or(false);
        (device, ok)
    });
    std::panic::set_hook(hook);
    match opened {
        Ok((device, true)) => Ok(device),
        Ok((_, false)) => Err(Error::Backend(
            "the wgpu device computed a wrong result".into(),
        )),
        Err(cause) => {
            let detail = cause
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| cause.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Error::Backend(format!(
                "no usable GPU adapter for wgpu ({detail}); install a Vulkan driver (e.g. Mesa's) \
                 or use the CPU backend"
            )))
        }
    }
}
