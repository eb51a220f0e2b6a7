//! Densifying a sparse table only when the dense copy fits in memory.
//!
//! A recipe densifies its CSR table at the end, or at a step with no sparse
//! form, and the dense table takes 8 bytes per cell and feature: 100,000
//! cells by 30,000 genes are 24 GB. Allocating more than the machine has
//! would abort the process (or wake the kernel's out-of-memory killer)
//! instead of failing with a message, so the recipe first compares the size
//! with the memory the kernel reports available (`MemAvailable` in
//! `/proc/meminfo`); where the kernel reports nothing, it does not check.

use std::fmt;

use super::PrepError;
use crate::data::{FeatureTable, SparseTable};

/// A number of bytes, shown in decimal megabytes or gigabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0 as f64;
        if bytes >= 1e9 {
            write!(f, "{:.1} GB", bytes / 1e9)
        } else {
            write!(f, "{:.1} MB", bytes / 1e6)
        }
    }
}

/// Bytes of a dense `f64` table of `cells` by `features` (saturating).
fn dense_bytes(cells: usize, features: usize) -> u64 {
    (cells as u64)
        .saturating_mul(features as u64)
        .saturating_mul(std::mem::size_of::<f64>() as u64)
}

/// The memory the kernel reports available, if it reports it.
fn available_memory() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text))
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let rest = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))?;
    let mut parts = rest.split_whitespace();
    let kilobytes: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => kilobytes.checked_mul(1024),
        _ => None,
    }
}

/// Fails, naming `stage`, when a dense table of `cells` by `features` needs
/// more than `available` bytes; passes when `available` is unknown.
fn check_fits(
    cells: usize,
    features: usize,
    available: Option<u64>,
    stage: impl FnOnce() -> String,
) -> Result<(), PrepError> {
    let needed = dense_bytes(cells, features);
    match available {
        Some(available) if needed > available => Err(PrepError::DenseTooLarge {
            stage: stage(),
            cells,
            features,
            needed: Bytes(needed),
            available: Bytes(available),
        }),
        _ => Ok(()),
    }
}

/// When a dense `f64` table of `cells` by `features` would not fit in the
/// memory the kernel reports available: its size and that memory. `None`
/// when it fits or nothing is reported.
pub fn dense_shortfall(cells: usize, features: usize) -> Option<(Bytes, Bytes)> {
    shortfall_within(cells, features, available_memory())
}

/// [`dense_shortfall`] against a given amount of available memory.
fn shortfall_within(
    cells: usize,
    features: usize,
    available: Option<u64>,
) -> Option<(Bytes, Bytes)> {
    let needed = dense_bytes(cells, features);
    let available = available?;
    (needed > available).then_some((Bytes(needed), Bytes(available)))
}

/// `table` densified whole, if the dense copy fits in the available memory.
pub(crate) fn densify(
    table: &SparseTable,
    stage: impl FnOnce() -> String,
) -> Result<FeatureTable, PrepError> {
    densify_within(table, available_memory(), stage)
}

/// The columns `columns` of `table` densified (in that order), if the dense
/// copy fits in the available memory; `None` inside if a column is out of range.
pub(crate) fn densify_columns(
    table: &SparseTable,
    columns: &[usize],
    stage: impl FnOnce() -> String,
) -> Result<Option<FeatureTable>, PrepError> {
    densify_columns_within(table, columns, available_memory(), stage)
}

/// [`densify`] against a given amount of available memory.
fn densify_within(
    table: &SparseTable,
    available: Option<u64>,
    stage: impl FnOnce() -> String,
) -> Result<FeatureTable, PrepError> {
    check_fits(table.cells.len(), table.features.len(), available, stage)?;
    Ok(table.to_dense())
}

/// [`densify_columns`] against a given amount of available memory.
fn densify_columns_within(
    table: &SparseTable,
    columns: &[usize],
    available: Option<u64>,
    stage: impl FnOnce() -> String,
) -> Result<Option<FeatureTable>, PrepError> {
    check_fits(table.cells.len(), columns.len(), available, stage)?;
    Ok(table.dense_columns(columns))
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    fn table() -> SparseTable {
        SparseTable::from_dense(&FeatureTable {
            cells: vec!["c0".into(), "c1".into()],
            features: vec!["g0".into(), "g1".into(), "g2".into()],
            values: array![[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]],
        })
    }

    #[test]
    fn reads_mem_available_in_bytes() {
        let meminfo = "MemTotal:       24000000 kB\nMemFree:        21000000 kB\n\
                       MemAvailable:   22000000 kB\nBuffers:           1000 kB\n";
        assert_eq!(mem_available(meminfo), Some(22_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(mem_available("MemAvailable: lots kB\n"), None);
        assert_eq!(mem_available("MemAvailable: 12 MB\n"), None);
    }

    #[test]
    fn a_shortfall_reports_both_sizes_only_when_the_table_does_not_fit() {
        let (needed, available) = shortfall_within(1000, 2000, Some(1_000_000)).unwrap();
        assert_eq!((needed, available), (Bytes(16_000_000), Bytes(1_000_000)));
        assert_eq!(shortfall_within(1000, 2000, Some(16_000_000)), None);
        assert_eq!(shortfall_within(1000, 2000, None), None);
        if available_memory().is_some() {
            assert!(dense_shortfall(1_000_000, 1_000_000).is_some());
            assert_eq!(dense_shortfall(10, 10), None);
        }
    }

    #[test]
    fn a_table_that_fits_is_densified() {
        let t = table();
        // 2 x 3 x 8 = 48 bytes.
        let dense = densify_within(&t, Some(48), || "the end".into()).unwrap();
        assert_eq!(dense, t.to_dense());
        let unknown = densify_within(&t, None, || "the end".into()).unwrap();
        assert_eq!(unknown, t.to_dense());
    }

    #[test]
    fn a_table_larger_than_the_available_memory_is_refused_with_its_size() {
        let err = densify_within(&table(), Some(47), || "the end of the recipe".into())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("the end of the recipe needs"), "{err}");
        assert!(err.contains("2 cells x 3 features"), "{err}");
        assert!(err.contains("0.0 MB as f64"), "{err}");
        assert!(err.contains("SelectGenes"), "{err}");
    }

    #[test]
    fn sizes_read_in_megabytes_and_gigabytes() {
        assert_eq!(Bytes(dense_bytes(100_000, 30_000)).to_string(), "24.0 GB");
        assert_eq!(Bytes(dense_bytes(1_000, 2_000)).to_string(), "16.0 MB");
        assert_eq!(dense_bytes(usize::MAX, 2), u64::MAX);
    }

    #[test]
    fn picked_columns_are_sized_by_their_own_count() {
        let t = table();
        // Two columns of two cells: 32 bytes.
        let stage = || "steps[0] (RestrictToFeatures)".to_string();
        let picked = densify_columns_within(&t, &[2, 0], Some(32), stage).unwrap();
        assert_eq!(picked.unwrap().features, ["g2", "g0"]);
        let err = densify_columns_within(&t, &[2, 0], Some(31), stage).unwrap_err();
        assert!(err.to_string().contains("2 cells x 2 features"), "{err}");
    }
}
