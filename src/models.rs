//! One module per method.

pub mod sbnn;
pub mod srrr;
