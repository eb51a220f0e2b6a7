//! One module per method.

pub mod apply;
pub mod cae;
pub mod method;
pub mod mixvae;
pub mod pc_cca;
pub mod sbnn;
pub mod srrr;

pub use method::{Headline, Method, SettingError, Weights};
