//! One module per method.

pub mod srrr;
