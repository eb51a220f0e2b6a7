//! patchbench: a terminal workbench for multimodal single-cell analysis.
//!
//! Data flows one way: files on disk ([`data`]) become a [`data::Dataset`], a
//! preprocessing recipe ([`prep`]) turns its modalities into model matrices,
//! models ([`models`]) are fitted under a validation protocol ([`analysis`]),
//! and their results are stored in a RON [`session`]. The [`runner`] executes
//! experiments and reports through the [`progress::Sink`] trait, so the
//! terminal UI and the headless `--batch` mode are two front ends over the same
//! engine. Nothing in this library draws to a terminal.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod analysis;
pub mod artifact;
pub mod batch;
pub mod cluster;
pub mod data;
pub mod figures;
pub mod models;
pub mod nn;
pub mod prep;
pub mod progress;
pub mod runner;
pub mod session;
pub mod tui;
