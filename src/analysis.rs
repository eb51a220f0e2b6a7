//! Validation protocols and metrics: cross-validation folds, R².
