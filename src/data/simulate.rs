//! Seeded synthetic Patch-seq data with known ground truth.
