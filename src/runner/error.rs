use std::path::PathBuf;

use crate::analysis::cv::CvError;
use crate::data::DataError;
use crate::models::cae::CaeError;
use crate::models::mixvae::MixVaeError;
use crate::models::sbnn::SbnnError;
use crate::models::srrr::SrrrError;
use crate::prep::PrepError;

/// Why an experiment could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Files the dataset needs are absent.
    #[error("dataset `{dataset}`: missing {}{}", list_paths(.files), .hint.as_deref().map(|h| format!("\n  to get them: {h}")).unwrap_or_default())]
    MissingFiles {
        /// The dataset.
        dataset: String,
        /// The absent files.
        files: Vec<PathBuf>,
        /// The dataset's `fetch` hint.
        hint: Option<String>,
    },
    /// A data file could not be loaded.
    #[error("dataset `{dataset}`: {source}")]
    Data {
        /// The dataset.
        dataset: String,
        /// What went wrong (boxed: data errors carry whole paths and names).
        source: Box<DataError>,
    },
    /// Preprocessing failed.
    #[error("dataset `{dataset}`, modality `{modality}`: {source}")]
    Prep {
        /// The dataset.
        dataset: String,
        /// The modality whose recipe failed.
        modality: String,
        /// What went wrong (boxed, like data errors).
        source: Box<PrepError>,
    },
    /// The data do not fit what the experiment asks of them.
    #[error("experiment `{experiment}`: {message}")]
    Unsuitable {
        /// The experiment.
        experiment: String,
        /// What is wrong.
        message: String,
    },
    /// Cross-validation folds could not be made.
    #[error("experiment `{experiment}`: {source}")]
    Folds {
        /// The experiment.
        experiment: String,
        /// What went wrong.
        source: CvError,
    },
    /// Sparse reduced-rank regression failed.
    #[error("experiment `{experiment}`: {source}")]
    Srrr {
        /// The experiment.
        experiment: String,
        /// What went wrong.
        source: SrrrError,
    },
    /// The sparse bottleneck network failed.
    #[error("experiment `{experiment}`: {source}")]
    Sbnn {
        /// The experiment.
        experiment: String,
        /// What went wrong.
        source: SbnnError,
    },
    /// A coupled autoencoder failed to train.
    #[error("experiment `{experiment}`: {source}")]
    Cae {
        /// The experiment.
        experiment: String,
        /// What went wrong.
        source: CaeError,
    },
    /// A trained network could not be saved beside the session.
    #[error("experiment `{experiment}`: cannot save weights to {}: {reason}", .path.display())]
    Weights {
        /// The experiment.
        experiment: String,
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The coupled mixture VAE failed.
    #[error("experiment `{experiment}`: {source}")]
    MixVae {
        /// The experiment.
        experiment: String,
        /// What went wrong.
        source: MixVaeError,
    },
}

fn list_paths(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
