//! The four panes of the workbench, one module each, and the view pane's
//! run comparison.

pub mod compare;
pub mod config;
pub mod datasets;
pub mod experiments;
pub mod view;
