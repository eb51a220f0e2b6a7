//! The RON session file: dataset definitions, experiments and their results.
//!
//! A session is one human-editable RON file with a `version` field. Datasets
//! name their files by paths relative to the session file together with the
//! preprocessing recipe of every modality; the data themselves are never copied
//! into the session. Experiments pair a model configuration with a validation
//! protocol and, once run, hold their result. Saving is atomic (write a
//! temporary file in the same folder, then rename), so a crash or Ctrl-C while
//! saving leaves the previous good session in place. Programs that write a
//! session go through [`SessionStore`], which merges their own changes into
//! the file as it is on disk, under a lock, keeping the user's comments.

mod config;
mod error;
mod file;
mod lock;
mod merge;
mod result;
mod ron_text;
mod saver;
mod schema;
mod store;
mod sweep;
mod validate;

pub use crate::models::mixvae::MixVaeSpec;
pub use config::{ExperimentConfig, config_to_ron, fingerprint, fingerprint_in, parse_config};
pub use error::SessionError;
pub use file::{load, parse, relocate, save, to_ron, write_atomic};
pub use lock::{OwnerLock, SaveLock, remove_stale_temp_files};
pub use merge::Change;
pub use result::{
    AgentCategories, ApplyDetail, CrossModal, Curve, ExperimentResult, FeatureScore, Latent,
    NamedLatent, Provenance, ResultDetail,
};
pub use saver::BackgroundSaver;
pub use schema::{
    DatasetSpec, Experiment, MetadataSpec, ModalitySpec, ModelSpec, Protocol, SESSION_VERSION,
    Session,
};
pub use store::{SaveJob, SaveOutcome, SaveReport, SessionStore};
pub use sweep::{
    Dimension, Distribution, RandomSearch, SEED, Sweep, SweepError, SweepSpec, SweepValues,
    numeric_parameters, replicate_key, run_name, set_parameter, with_parameter,
};
