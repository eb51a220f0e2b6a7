use std::path::PathBuf;

use crate::analysis::cv::CvError;
use crate::data::DataError;
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
    #[error("dataset `{dataset}`")]
    Data {
        /// The dataset.
        dataset: String,
        /// What went wrong (boxed: data errors carry whole paths and names).
        source: Box<DataError>,
    },
    /// Preprocessing failed.
    #[error("dataset `{dataset}`, modality `{modality}`")]
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
    #[error("experiment `{experiment}`")]
    Folds {
        /// The experiment.
        experiment: String,
        /// What went wrong.
        source: CvError,
    },
    /// The model failed (to validate, to train, or to score).
    #[error("experiment `{experiment}`")]
    Model {
        /// The experiment.
        experiment: String,
        /// What went wrong, from the model's own error type.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Training finished, but its result is not believable (not finite, out of
    /// the statistic's range, or a loss that exploded); nothing is stored.
    #[error("experiment `{experiment}`: result rejected: {reason}")]
    Rejected {
        /// The experiment.
        experiment: String,
        /// Which value is wrong and what probably caused it.
        reason: String,
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
}

impl RunError {
    /// The model error `source` of `experiment`.
    pub fn model(experiment: &str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        RunError::Model {
            experiment: experiment.to_string(),
            source: Box::new(source),
        }
    }
}

fn list_paths(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
