//! One module per method.

pub mod cae;
pub mod mixvae;
pub mod sbnn;
pub mod srrr;
