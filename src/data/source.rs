//! Opening a delimited text file for the table and metadata readers.
//!
//! A file is gzip-compressed when it starts with the gzip magic bytes
//! (whatever its name); a name ending in `.gz` without them is an error rather
//! than a guess. The delimiter is taken from the header line: tab-separated
//! when it has more tabs than commas, comma-separated otherwise. Records are
//! read as raw bytes ([`csv::ByteRecord`]) so that large numeric tables need
//! no allocation per value; text fields are checked for UTF-8 on demand.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use super::DataError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const READ_BUFFER: usize = 1 << 20;

/// A delimited text file being read record by record.
pub(super) struct TextSource {
    path: PathBuf,
    gzip: bool,
    reader: csv::Reader<Box<dyn Read>>,
}

impl TextSource {
    /// Opens `path`, decompressing gzip data and detecting the delimiter.
    pub(super) fn open(path: &Path) -> Result<Self, DataError> {
        let (mut text, gzip) = open_decompressed(path)?;
        let mut first_line = Vec::new();
        text.read_until(b'\n', &mut first_line)
            .map_err(|source| read_error(path, gzip, source))?;
        let delimiter = detect_delimiter(&first_line);
        let chained: Box<dyn Read> = Box::new(Cursor::new(first_line).chain(text));
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(READ_BUFFER)
            .from_reader(chained);
        Ok(Self {
            path: path.to_path_buf(),
            gzip,
            reader,
        })
    }

    /// The file being read.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next non-empty record into `record`; `false` at the end of the file.
    pub(super) fn next_record(&mut self, record: &mut ByteRecord) -> Result<bool, DataError> {
        self.reader.read_byte_record(record).map_err(|error| {
            let line = error.position().map_or(0, csv::Position::line);
            match error.into_kind() {
                csv::ErrorKind::Io(source) => read_error(&self.path, self.gzip, source),
                other => DataError::Invalid {
                    path: self.path.clone(),
                    message: format!("cannot parse the text near line {line}: {other:?}"),
                },
            }
        })
    }

    /// Reads the header record as trimmed UTF-8 names (a leading byte-order mark is dropped).
    /// Returns the names and the header's line, or `None` for an empty file.
    pub(super) fn header(&mut self) -> Result<Option<(Vec<String>, u64)>, DataError> {
        let mut record = ByteRecord::new();
        if !self.next_record(&mut record)? {
            return Ok(None);
        }
        let line = line_of(&record);
        let names = record
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let field = if index == 0 {
                    field.strip_prefix(UTF8_BOM).unwrap_or(field)
                } else {
                    field
                };
                self.text(field, line, index).map(str::to_owned)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((names, line)))
    }

    /// `field` (0-based `index` on `line`) as trimmed UTF-8 text.
    pub(super) fn text<'a>(
        &self,
        field: &'a [u8],
        line: u64,
        index: usize,
    ) -> Result<&'a str, DataError> {
        std::str::from_utf8(field.trim_ascii()).map_err(|_| DataError::Parse {
            path: self.path.clone(),
            line,
            column: column_number(index),
            message: format!(
                "'{}' is not valid UTF-8 text",
                String::from_utf8_lossy(field)
            ),
        })
    }
}

/// Opens `path` for reading, decompressing it when it starts with the gzip
/// magic bytes; also says whether it was gzip. A name ending in `.gz`
/// without the magic bytes is an error.
pub(super) fn open_decompressed(path: &Path) -> Result<(Box<dyn BufRead>, bool), DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let mut raw = BufReader::with_capacity(READ_BUFFER, file);
    let gzip = starts_with_gzip_magic(&mut raw, path)?;
    let named_gz = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz"));
    if named_gz && !gzip {
        return Err(DataError::Gzip {
            path: path.to_path_buf(),
            cause: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the name ends in .gz but the file does not start with the gzip magic bytes",
            ),
        });
    }
    let text: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            READ_BUFFER,
            flate2::bufread::MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    };
    Ok((text, gzip))
}

/// The 1-based line a record starts on.
pub(super) fn line_of(record: &ByteRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

/// The 1-based column number of the 0-based field `index`.
pub(super) fn column_number(index: usize) -> u64 {
    u64::try_from(index).map_or(u64::MAX, |i| i.saturating_add(1))
}

/// Tab when the header line has more tabs than commas, comma otherwise.
fn detect_delimiter(header_line: &[u8]) -> u8 {
    let tabs = header_line.iter().filter(|&&b| b == b'\t').count();
    let commas = header_line.iter().filter(|&&b| b == b',').count();
    if tabs > commas { b'\t' } else { b',' }
}

fn starts_with_gzip_magic(raw: &mut BufReader<File>, path: &Path) -> Result<bool, DataError> {
    let start = raw.fill_buf().map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    Ok(start.starts_with(&GZIP_MAGIC))
}

pub(super) fn read_error(path: &Path, gzip: bool, source: std::io::Error) -> DataError {
    if gzip {
        DataError::Gzip {
            path: path.to_path_buf(),
            cause: source,
        }
    } else {
        DataError::Io {
            path: path.to_path_buf(),
            cause: source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_follows_the_majority_of_tabs_or_commas() {
        assert_eq!(detect_delimiter(b"gene\tc1\tc2\n"), b'\t');
        assert_eq!(detect_delimiter(b"gene,c1,c2\n"), b',');
        assert_eq!(detect_delimiter(b"\tAP amp, mV\tAHP\n"), b'\t');
        assert_eq!(detect_delimiter(b"single\n"), b',');
    }

    #[test]
    fn column_numbers_are_one_based() {
        assert_eq!(column_number(0), 1);
        assert_eq!(column_number(41), 42);
    }
}
