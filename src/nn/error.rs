//! The error type of the neural layer. Backend failures (out of memory, a
//! device that cannot be opened) are turned into text here so that no dfdx type
//! leaks into the rest of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in [`crate::nn`].
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// Two operands, or an operand and a layer, do not have compatible shapes.
    #[error("{op}: expected shape {expected}, found {found}")]
    Shape {
        /// The operation that checked the shapes.
        op: String,
        /// What the operation needed.
        expected: String,
        /// What it was given.
        found: String,
    },
    /// A value is NaN or infinite.
    #[error("{what} is not finite at element {index} (value {value})")]
    NonFinite {
        /// What was checked (a loss, a parameter name, ...).
        what: String,
        /// Position of the first non-finite element.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// A parameter name or id that the store does not hold.
    #[error("unknown parameter {0}")]
    UnknownParam(String),
    /// A parameter name that is already registered.
    #[error("parameter {0} already exists")]
    DuplicateParam(String),
    /// An argument outside its valid range.
    #[error("invalid argument {name}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// `backward` was called on a loss that depends on no trainable parameter.
    #[error("the loss depends on no trainable parameter, so it has no gradient")]
    NoGradient,
    /// The requested device is not available in this build or on this machine.
    #[error("device {device} is unavailable: {reason}")]
    DeviceUnavailable {
        /// The device that was asked for.
        device: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The backend reported a failure (for example out of memory).
    #[error("tensor backend error: {0}")]
    Backend(String),
    /// A weight file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A weight file is malformed or does not match the parameters.
    #[error("{path}: {reason}")]
    WeightFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl NnError {
    /// A shape error for `op`.
    pub(crate) fn shape(
        op: &str,
        expected: impl std::fmt::Display,
        found: impl std::fmt::Display,
    ) -> Self {
        NnError::Shape {
            op: op.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// An invalid-argument error.
    pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> Self {
        NnError::InvalidArgument {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

#[cfg(not(feature = "cuda"))]
impl From<dfdx::tensor::CpuError> for NnError {
    fn from(e: dfdx::tensor::CpuError) -> Self {
        NnError::Backend(format!("{e:?}"))
    }
}

#[cfg(feature = "cuda")]
impl From<dfdx::tensor::CudaError> for NnError {
    fn from(e: dfdx::tensor::CudaError) -> Self {
        NnError::Backend(format!("{e:?}"))
    }
}
