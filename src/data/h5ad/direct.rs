//! Reading a 1-D numeric array's bytes straight from the file, in parallel,
//! when HDF5 stores them as they are in memory: a contiguous or chunked
//! dataset without filters (no compression), in a little-endian type, in the
//! file the dataset was opened from. Each piece of the array is read with
//! `pread` by one of several threads: straight into its place in the result
//! when the stored entries are the result's type ([`read_in_place`]), or into
//! a buffer of its reader thread and converted into its place in the same
//! pass ([`read`]). Either way the result is written once and its pages are
//! first touched by the threads that fill them.
//!
//! [`locate`] says where the pieces lie, or `None` whenever anything does not
//! fit that picture (a filter, a big-endian or unusual type, chunks not yet
//! written, storage in external files, a user block); the caller then reads
//! through HDF5 as before. [`read`] gives `None` too when a read comes back
//! short (a truncated file) or a value is refused, so that the HDF5 reader
//! reports it with its usual message.

use std::fs::File;
use std::os::unix::fs::FileExt;

use bytemuck::Pod;
use hdf5::plist::dataset_create::Layout;
use hdf5::{Dataset, Datatype, H5Type};
use rayon::prelude::*;

/// The types a stored array may have to be read straight (little-endian,
/// as [`Datatype::from_type`] gives them on this platform).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stored {
    /// IEEE `float32`.
    F32,
    /// IEEE `float64`.
    F64,
    /// Signed 32-bit integers.
    I32,
    /// Signed 64-bit integers.
    I64,
    /// Unsigned 32-bit integers.
    U32,
    /// Unsigned 64-bit integers.
    U64,
}

impl Stored {
    fn of(dtype: &Datatype) -> Option<Self> {
        let same = |native: hdf5::Result<Datatype>| native.is_ok_and(|n| &n == dtype);
        if cfg!(target_endian = "big") {
            return None;
        }
        [
            (Self::F32, same(Datatype::from_type::<f32>())),
            (Self::F64, same(Datatype::from_type::<f64>())),
            (Self::I32, same(Datatype::from_type::<i32>())),
            (Self::I64, same(Datatype::from_type::<i64>())),
            (Self::U32, same(Datatype::from_type::<u32>())),
            (Self::U64, same(Datatype::from_type::<u64>())),
        ]
        .into_iter()
        .find_map(|(stored, matches)| matches.then_some(stored))
    }

    /// Bytes per entry.
    fn size(self) -> usize {
        match self {
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F64 | Self::I64 | Self::U64 => 8,
        }
    }
}

/// Consecutive entries stored consecutively in the file.
#[derive(Clone, Copy, Debug)]
struct Piece {
    /// Index of the first entry.
    first: usize,
    /// Number of entries.
    len: usize,
    /// Byte offset of the first entry in the file.
    offset: u64,
}

/// Where a 1-D array's entries lie in its file.
#[derive(Debug)]
pub(super) struct Located {
    /// The stored type.
    pub(super) stored: Stored,
    /// The file that holds the entries.
    file: String,
    /// Entries in all.
    total: usize,
    /// Pieces in entry order, covering `0..total` without gaps.
    pieces: Vec<Piece>,
}

/// Entries read at once by one thread at most (1 MiB of `f32`).
const PIECE: usize = 1 << 18;

/// Where the entries of the 1-D `dataset` lie in its file, if they can be
/// read straight from it; `None` otherwise.
pub(super) fn locate(dataset: &Dataset) -> Option<Located> {
    if dataset.ndim() != 1 || !dataset.filters().is_empty() {
        return None;
    }
    let stored = Stored::of(&dataset.dtype().ok()?)?;
    let file = dataset.file().ok()?;
    // Chunk addresses are relative to the end of a user block.
    if file.userblock() != 0 {
        return None;
    }
    let dcpl = dataset.dcpl().ok()?;
    if !dcpl.external().is_empty() {
        return None;
    }
    let total = dataset.size();
    let size = stored.size();
    let bytes = u64::try_from(total.checked_mul(size)?).ok()?;
    let mut pieces = Vec::new();
    match dcpl.layout() {
        Layout::Contiguous => {
            let offset = dataset.offset()?;
            if dataset.storage_size() != bytes {
                return None;
            }
            pieces.push(Piece {
                first: 0,
                len: total,
                offset,
            });
        }
        Layout::Chunked => {
            let [chunk] = dataset.chunk()?[..] else {
                return None;
            };
            if chunk == 0 || dataset.num_chunks()? != total.div_ceil(chunk) {
                return None;
            }
            let chunk_bytes = u64::try_from(chunk.checked_mul(size)?).ok()?;
            for index in 0..total.div_ceil(chunk) {
                let info = dataset.chunk_info(index)?;
                let first = usize::try_from(*info.offset.first()?).ok()?;
                if info.size != chunk_bytes || first % chunk != 0 || first >= total {
                    return None;
                }
                pieces.push(Piece {
                    first,
                    len: chunk.min(total - first),
                    offset: info.addr,
                });
            }
            pieces.sort_unstable_by_key(|p| p.first);
        }
        _ => return None,
    }
    let mut next = 0;
    for piece in &pieces {
        if piece.first != next {
            return None;
        }
        next += piece.len;
    }
    (next == total).then(|| Located {
        stored,
        file: dataset.filename(),
        total,
        pieces: split(&pieces, size),
    })
}

/// The pieces cut to at most [`PIECE`] entries each.
fn split(pieces: &[Piece], size: usize) -> Vec<Piece> {
    let mut cut = Vec::with_capacity(pieces.len());
    for piece in pieces {
        for start in (0..piece.len).step_by(PIECE) {
            cut.push(Piece {
                first: piece.first + start,
                len: PIECE.min(piece.len - start),
                offset: piece.offset + (start * size) as u64,
            });
        }
    }
    cut
}

/// The stored entries of `located`, each turned into `T` by `convert`: it
/// fills its output slice from the stored bytes of the same entries and says
/// whether all of them were acceptable. `None` when a read fails or comes
/// back short, or `convert` refuses a piece.
pub(super) fn read<T>(
    located: &Located,
    convert: impl Fn(Stored, &[u8], &mut [T]) -> bool + Sync,
) -> Option<Vec<T>>
where
    T: Clone + Default + Send,
{
    let size = located.stored.size();
    fill(located, |file, piece, part| {
        BUFFER.with_borrow_mut(|buffer| {
            buffer.resize(piece.len * size, 0);
            file.read_exact_at(buffer, piece.offset).is_ok()
                && convert(located.stored, buffer, part)
        })
    })
}

/// The stored entries of `located` read straight into the result, for a
/// caller that knows they are stored as `T` (the same size and, in this
/// little-endian layout, the same bytes); `check` says whether a piece's
/// entries are acceptable. `None` when the sizes differ, a read fails or
/// comes back short, or `check` refuses a piece.
pub(super) fn read_in_place<T>(
    located: &Located,
    check: impl Fn(&[T]) -> bool + Sync,
) -> Option<Vec<T>>
where
    T: Pod + Default + Send + Sync,
{
    if located.stored.size() != size_of::<T>() {
        return None;
    }
    fill(located, |file, piece, part| {
        file.read_exact_at(bytemuck::cast_slice_mut(part), piece.offset)
            .is_ok()
            && check(part)
    })
}

/// A result of `located.total` entries whose pieces `fill_piece` fills in
/// parallel (given the file, the piece and its part of the result); `None`
/// when the file cannot be opened or a piece is refused.
fn fill<T>(
    located: &Located,
    fill_piece: impl Fn(&File, &Piece, &mut [T]) -> bool + Sync,
) -> Option<Vec<T>>
where
    T: Clone + Default + Send,
{
    let file = File::open(&located.file).ok()?;
    // A zeroed allocation is mapped lazily: its pages are first touched (and
    // zeroed by the kernel) by the threads below, in parallel.
    let mut values = vec![T::default(); located.total];
    advise_huge_pages(&mut values);
    let mut parts = Vec::with_capacity(located.pieces.len());
    let mut rest = values.as_mut_slice();
    for piece in &located.pieces {
        let (part, tail) = rest.split_at_mut(piece.len);
        parts.push((piece, part));
        rest = tail;
    }
    let ok = parts
        .into_par_iter()
        .all(|(piece, part)| fill_piece(&file, piece, part));
    ok.then_some(values)
}

/// Asks the kernel to back the whole 2 MiB pages inside `values` with
/// transparent huge pages, as numpy does for its large arrays: a 120 MB
/// result is then faulted in as about 60 pages instead of about 30,000. A
/// hint only (nothing changes where huge pages are off); it must come before
/// the pages are first touched.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages<T>(values: &mut [T]) {
    const HUGE_PAGE: usize = 2 << 20;
    let start = values.as_mut_ptr() as usize;
    let end = start + size_of_val(values);
    let first = start.next_multiple_of(HUGE_PAGE);
    let last = end / HUGE_PAGE * HUGE_PAGE;
    if last > first {
        // SAFETY: the range lies inside `values`' allocation, and MADV_HUGEPAGE
        // changes how its pages are backed, never their contents.
        unsafe {
            libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

/// Huge pages are asked for on Linux only.
#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_values: &mut [T]) {}

thread_local! {
    /// Each reader thread's buffer for the bytes of one piece.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Fills `out` with the entries stored in `bytes` as `stored`, each turned
/// into `T` by `from` (a loop without branches, so the compiler can
/// vectorise it; the caller checks the results afterwards); `false` if
/// `bytes` does not hold `out.len()` entries.
pub(super) fn convert_each<T>(
    stored: Stored,
    bytes: &[u8],
    out: &mut [T],
    from: impl Fn(Number) -> T,
) -> bool {
    macro_rules! each {
        ($t:ty, $n:expr, $variant:ident) => {{
            let (entries, rest) = bytes.as_chunks::<$n>();
            if !rest.is_empty() || entries.len() != out.len() {
                return false;
            }
            for (slot, entry) in out.iter_mut().zip(entries) {
                *slot = from(Number::$variant(<$t>::from_le_bytes(*entry)));
            }
            true
        }};
    }
    match stored {
        Stored::F32 => each!(f32, 4, F32),
        Stored::F64 => each!(f64, 8, F64),
        Stored::I32 => each!(i32, 4, I32),
        Stored::I64 => each!(i64, 8, I64),
        Stored::U32 => each!(u32, 4, U32),
        Stored::U64 => each!(u64, 8, U64),
    }
}

/// One stored entry in its stored type.
#[derive(Clone, Copy, Debug)]
pub(super) enum Number {
    /// A `float32` entry.
    F32(f32),
    /// A `float64` entry.
    F64(f64),
    /// A signed 32-bit entry.
    I32(i32),
    /// A signed 64-bit entry.
    I64(i64),
    /// An unsigned 32-bit entry.
    U32(u32),
    /// An unsigned 64-bit entry.
    U64(u64),
}

/// Reads the first and last entries of `dataset` through HDF5 as `T` and
/// says whether they equal those of `values`: a check that the bytes read
/// straight were the dataset's.
pub(super) fn agrees<T: H5Type + PartialEq>(dataset: &Dataset, values: &[T]) -> bool {
    let n = values.len().min(16);
    let tail = values.len() - n;
    let read = |range: std::ops::Range<usize>| {
        dataset
            .as_reader()
            .conversion(hdf5::Conversion::Hard)
            .read_slice_1d::<T, _>(range.clone())
            .is_ok_and(|got| got.as_slice() == Some(&values[range]))
    };
    read(0..n) && read(tail..values.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dataset `name` of `file` holding `values`, stored as `store` says.
    fn stored(
        file: &hdf5::File,
        name: &str,
        values: &[i32],
        store: impl FnOnce(hdf5::DatasetBuilder) -> hdf5::DatasetBuilder,
    ) -> Dataset {
        store(file.new_dataset_builder())
            .with_data(values)
            .create(name)
            .unwrap()
    }

    fn as_i64(located: &Located) -> Option<Vec<i64>> {
        read(located, |stored, bytes, out| {
            convert_each(stored, bytes, out, |n| match n {
                Number::I32(v) => i64::from(v),
                _ => i64::MIN,
            })
        })
    }

    #[test]
    fn uncompressed_arrays_are_located_and_read_compressed_ones_are_not() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = hdf5::File::create(dir.path().join("a.h5")).unwrap();
        let values: Vec<i32> = (0..1000).map(|i| i * 7 - 300).collect();
        let want: Vec<i64> = values.iter().map(|&v| i64::from(v)).collect();
        let chunked = stored(&file, "chunked", &values, |b| b.chunk(97));
        let contiguous = stored(&file, "contiguous", &values, |b| b.no_chunk());
        let gzip = stored(&file, "gzip", &values, |b| b.chunk(97).deflate(4));
        file.flush().unwrap();

        let located = locate(&chunked).unwrap();
        assert_eq!(located.stored, Stored::I32);
        assert_eq!(located.pieces.len(), 11, "{located:?}");
        assert_eq!(as_i64(&located), Some(want.clone()));
        let located = locate(&contiguous).unwrap();
        assert_eq!(located.pieces.len(), 1);
        assert_eq!(as_i64(&located), Some(want));
        assert!(locate(&gzip).is_none());
        // A refused piece makes the read give up.
        assert!(
            read(
                &locate(&chunked).unwrap(),
                |stored, bytes, out: &mut [i64]| {
                    convert_each(stored, bytes, out, |n| match n {
                        Number::I32(v) => i64::from(v),
                        _ => i64::MIN,
                    }) && out.iter().all(|&v| v >= 0)
                }
            )
            .is_none()
        );
    }

    #[test]
    fn entries_stored_as_the_result_type_are_read_in_place() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = hdf5::File::create(dir.path().join("a.h5")).unwrap();
        let values: Vec<i32> = (0..1000).map(|i| i * 7 - 300).collect();
        let chunked = stored(&file, "chunked", &values, |b| b.chunk(97));
        file.flush().unwrap();
        let located = locate(&chunked).unwrap();
        assert_eq!(read_in_place(&located, |_: &[i32]| true), Some(values));
        // A refused piece makes the read give up, and so does a size that is not the stored one.
        assert!(read_in_place(&located, |part: &[i32]| part.iter().all(|&v| v >= 0)).is_none());
        assert!(read_in_place(&located, |_: &[i64]| true).is_none());
    }

    #[test]
    fn big_pieces_are_split() {
        let pieces = split(
            &[Piece {
                first: 0,
                len: PIECE * 2 + 5,
                offset: 100,
            }],
            4,
        );
        let spans: Vec<(usize, usize, u64)> =
            pieces.iter().map(|p| (p.first, p.len, p.offset)).collect();
        let step = (PIECE * 4) as u64;
        assert_eq!(
            spans,
            [
                (0, PIECE, 100),
                (PIECE, PIECE, 100 + step),
                (2 * PIECE, 5, 100 + 2 * step)
            ]
        );
    }
}
