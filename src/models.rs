//! One module per method.

pub mod cae;
pub mod srrr;
