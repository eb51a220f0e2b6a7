//! Where tensors live. The compute device is chosen once, from a
//! [`DeviceChoice`] that sessions store, and every tensor of a model is created
//! on the [`Device`] its [`crate::nn::ParamStore`] holds. The backend device
//! type is the alias `Dev`: dfdx's `Cpu` in a default build, dfdx's `Cuda`
//! when the crate is built with the `cuda` feature.

use std::fmt;
use std::str::FromStr;

use dfdx::tensor::Cache;
use serde::{Deserialize, Serialize};

use super::NnError;

/// The backend device type of this build.
#[cfg(not(feature = "cuda"))]
pub(crate) type Dev = dfdx::tensor::Cpu;
/// The backend device type of this build.
#[cfg(feature = "cuda")]
pub(crate) type Dev = dfdx::tensor::Cuda;

/// Which device a model trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DeviceChoice {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal (needs a build with the `cuda` feature).
    Cuda(usize),
}

impl fmt::Display for DeviceChoice {
    /// `cpu` or `cuda:N`, the form [`DeviceChoice::from_str`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = String;

    /// Reads `cpu`, `cuda` (the first GPU) or `cuda:N`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let expected =
            || format!("expected `cpu`, `cuda` or `cuda:N` (N a GPU number), got `{text}`");
        match lower.split_once(':') {
            None if lower == "cpu" => Ok(DeviceChoice::Cpu),
            None if lower == "cuda" => Ok(DeviceChoice::Cuda(0)),
            Some(("cuda", ordinal)) => ordinal
                .parse()
                .map(DeviceChoice::Cuda)
                .map_err(|_| expected()),
            _ => Err(expected()),
        }
    }
}

/// An opened compute device. Cheap to clone: clones share the device.
///
/// Clones also share the allocation cache, which is not safe to use from two
/// threads at once (dfdx 0.13 looks a cached buffer up and takes it under
/// separate locks), so work that runs in parallel opens one device per thread.
#[derive(Debug, Clone)]
pub struct Device {
    pub(crate) dev: Dev,
}

impl Device {
    /// Opens the device named by `choice`, or says why it is unavailable.
    pub fn open(choice: DeviceChoice) -> Result<Self, NnError> {
        let dev = open_backend(choice)?;
        // Reuse freed buffers of equal size: a training step allocates the same
        // tensors every time.
        dev.try_enable_cache()?;
        Ok(Device { dev })
    }

    /// Frees the buffers held by the allocation cache. Tensors built from host
    /// data (inputs, noise, masks) hand their buffers to the cache when
    /// dropped, but only the backend's own allocations take buffers out of it,
    /// so a long training loop must empty it now and then (once per epoch) or
    /// its memory grows with every step.
    pub fn empty_cache(&self) -> Result<(), NnError> {
        self.dev.try_empty_cache()?;
        Ok(())
    }
}

#[cfg(not(feature = "cuda"))]
fn open_backend(choice: DeviceChoice) -> Result<Dev, NnError> {
    match choice {
        DeviceChoice::Cpu => Ok(Dev::default()),
        DeviceChoice::Cuda(ordinal) => Err(NnError::DeviceUnavailable {
            device: format!("cuda:{ordinal}"),
            reason: "patchbench was built without the `cuda` feature \
                     (build with `--features cuda`; README, section GPU)"
                .to_string(),
        }),
    }
}

#[cfg(feature = "cuda")]
fn open_backend(choice: DeviceChoice) -> Result<Dev, NnError> {
    match choice {
        DeviceChoice::Cuda(ordinal) => {
            let unavailable = |reason: String| NnError::DeviceUnavailable {
                device: choice.to_string(),
                reason,
            };
            // dfdx's constructor unwraps the driver's first answers (cudarc
            // 0.9 panics without a driver, a GPU or that ordinal): ask first.
            use cudarc::driver::result as driver;
            driver::init()
                .map_err(|e| unavailable(format!("the CUDA driver did not start: {e}")))?;
            let count = driver::device::get_count().map_err(|e| unavailable(e.to_string()))?;
            if !usize::try_from(count).is_ok_and(|count| ordinal < count) {
                return Err(unavailable(format!("this machine has {count} CUDA GPU(s)")));
            }
            Dev::try_build(ordinal, 0).map_err(|e| unavailable(format!("{e:?}")))
        }
        DeviceChoice::Cpu => Err(NnError::DeviceUnavailable {
            device: "cpu".to_string(),
            reason: "this build trains on CUDA; rebuild without the `cuda` feature for the CPU"
                .to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_opens_and_choice_round_trips_through_ron() {
        assert!(Device::open(DeviceChoice::Cpu).is_ok());
        let text = ron::to_string(&DeviceChoice::Cuda(1)).unwrap();
        let back: DeviceChoice = ron::from_str(&text).unwrap();
        assert_eq!(back, DeviceChoice::Cuda(1));
    }

    #[test]
    fn choices_parse_from_the_command_line_form() {
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("CUDA".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:2".parse(), Ok(DeviceChoice::Cuda(2)));
        for choice in [DeviceChoice::Cpu, DeviceChoice::Cuda(3)] {
            assert_eq!(choice.to_string().parse(), Ok(choice));
        }
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0", ""] {
            let err = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(
                err.contains("expected `cpu`, `cuda` or `cuda:N`"),
                "{bad}: {err}"
            );
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_is_refused_without_the_feature() {
        let err = Device::open(DeviceChoice::Cuda(0)).unwrap_err();
        assert!(err.to_string().contains("cuda:0"), "{err}");
    }
}
