//! The RON session file: datasets, experiments and their results.
