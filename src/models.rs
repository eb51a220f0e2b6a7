//! One module per method.

pub mod cae;
pub mod sbnn;
pub mod srrr;
