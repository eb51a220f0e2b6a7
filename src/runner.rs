//! Runs a session's experiments: loads and preprocesses their datasets, fits
//! each model under its validation protocol, and returns results for the
//! session. Progress goes to a [`crate::progress::Sink`]; nothing here draws.
//! [`RunQueue`] keeps the books of queued and running experiments for both
//! front ends.

mod apply;
mod artifact;
mod cae;
mod checks;
mod dataset;
mod device;
mod error;
mod experiment;
mod latents;
mod mixvae;
mod pc_cca;
mod queue;
mod sbnn;
mod srrr;
mod weights;

pub use apply::{SourceModel, run_application};
pub use dataset::{PreparedDataset, load_dataset, missing_files};
pub use error::RunError;
pub use experiment::{run_experiment, run_experiment_saving_weights};
pub use queue::{Cancelled, Job, Progress, QueueError, Run, RunQueue, stage_eta};
pub use weights::WeightsTarget;
