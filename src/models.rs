//! One module per method.

pub mod mixvae;
pub mod srrr;
