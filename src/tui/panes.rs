//! The four panes of the workbench, one module each.

pub mod config;
pub mod datasets;
pub mod experiments;
pub mod view;
