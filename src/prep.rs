//! Preprocessing recipes: what turns a loaded modality into a model matrix.
