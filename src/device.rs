//! Opening a device natively. burn panics when a GPU adapter is missing; callers get an error.

use burn::tensor::{Device, DeviceKind, Tensor};

use crate::error::{Error, Result};

/// burn's pure-Rust CPU backend.
pub fn cpu() -> Device {
    Device::flex()
}

/// The default wgpu adapter (Vulkan, Metal or DX12), checked with a small computation.
pub fn wgpu() -> Result<Device> {
    open_wgpu(DeviceKind::DefaultDevice)
}

/// A graphics card through wgpu, discrete first, never a software adapter (lavapipe, which is
/// far slower than the CPU backend); an error saying why when the machine has none.
pub fn graphics_card() -> Result<Device> {
    [
        DeviceKind::DiscreteGpu(0),
        DeviceKind::IntegratedGpu(0),
        DeviceKind::VirtualGpu(0),
    ]
    .into_iter()
    .find_map(|kind| open_wgpu(kind).ok())
    .ok_or_else(|| {
        Error::Backend(
            "no graphics card that wgpu can use (software adapters such as lavapipe are passed \
             over)"
                .into(),
        )
    })
}

fn open_wgpu(kind: DeviceKind) -> Result<Device> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| {
        let device = Device::wgpu(kind);
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
