//! Mutations of an input file's bytes, and the proptest strategy that draws them.
//!
//! A mutation names its position by a [`Position`], a fraction of the way
//! through whatever it picks from (bytes, lines, tokens), so the same
//! mutation applies to inputs of any length (a seed file, or a file another
//! mutation already changed). Besides byte-level damage (bit flips,
//! insertions, deletions, truncations) there are mutations aware of the two
//! text formats fuzzed here: lines (rows of a table, fields of a pretty RON
//! session), tokens (table fields, RON identifiers, numbers and strings),
//! numbers replaced by extremes, `name: value` fields duplicated, unknown
//! fields added, a byte-order mark, CRLF line ends, an empty file.

use std::ops::Range;

use proptest::prelude::*;

/// Text that often breaks parsers besides [`NUMBERS`]: missing markers,
/// RON and CSV punctuation, escapes, non-ASCII text.
const TEXT: &[&str] = &[
    "nan", "-inf", "NA", "", "\"\"", "\"", ",", "\t", "\n", "\r\n", "(", ")", "[", "]", "{", "}",
    ":", "None", "Some(", "true", "()", "[]", "\u{feff}", "é", "\u{0}", "\\", "\\u{0}", "//", "/*",
    "r#\"", "'", "#", "gene", "cell_id",
];

/// A place in a sequence of any length: `Position(p)` picks element
/// `len * p / 2^64` of `len`, so it shrinks towards the start.
#[derive(Debug, Clone, Copy)]
pub struct Position(pub u64);

impl Position {
    /// The element this position picks from `len` elements (`len` > 0).
    fn of(self, len: usize) -> usize {
        ((len as u128 * u128::from(self.0)) >> 64) as usize
    }
}

fn position() -> impl Strategy<Value = Position> {
    any::<u64>().prop_map(Position)
}

/// Numbers that are extreme, out of range for some field, or written in a form Rust does not read.
const NUMBERS: &[&str] = &[
    "1e300",
    "-1e300",
    "1e400",
    "-0",
    "NaN",
    "inf",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "-1",
    "0",
    "1",
    "2",
    "1e-320",
    "0.5",
    "-0.0",
    "9223372036854775808",
    "-9223372036854775809",
    "340282366920938463463374607431768211456",
    "0x10",
    "1_000",
];

/// Names of RON variants and steps a session may hold, to swap one for another.
const WORDS: &[&str] = &[
    "DropCellsWithMissing",
    "DropFeaturesWithMissing",
    "DropZeroLibrary",
    "DropConstantFeatures",
    "LibrarySizeNormalise",
    "Log2p1",
    "Variance",
    "AllCells",
    "TrainingFold",
    "None",
    "FeaturesByCells",
    "CellsByFeatures",
    "Stratified",
    "Shuffled",
    "NumpyContiguous",
];

/// One change to an input file.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flips one bit of one byte.
    FlipBit {
        /// Which byte.
        at: Position,
        /// Which bit (0-7).
        bit: u8,
    },
    /// Inserts bytes before a position.
    Insert {
        /// Where.
        at: Position,
        /// What.
        bytes: Vec<u8>,
    },
    /// Removes up to `len` bytes from a position.
    Delete {
        /// Where.
        at: Position,
        /// How many.
        len: usize,
    },
    /// Cuts the input short.
    Truncate {
        /// The new length.
        at: Position,
    },
    /// Repeats a line right after itself (a duplicated row or RON field).
    DuplicateLine {
        /// Which line.
        line: Position,
    },
    /// Removes a line.
    DeleteLine {
        /// Which line.
        line: Position,
    },
    /// Swaps two lines.
    SwapLines {
        /// One line.
        a: Position,
        /// The other.
        b: Position,
    },
    /// Swaps two tokens.
    SwapTokens {
        /// One token.
        a: Position,
        /// The other.
        b: Position,
    },
    /// Replaces a token by a number of [`NUMBERS`] or text of [`TEXT`].
    ReplaceToken {
        /// Which token.
        token: Position,
        /// The replacement.
        with: &'static str,
    },
    /// Replaces a number by a number of [`NUMBERS`] or text of [`TEXT`].
    ReplaceNumber {
        /// Which number.
        number: Position,
        /// The replacement.
        with: &'static str,
    },
    /// Replaces a capitalised word (a variant or step name) by another such name.
    ReplaceWord {
        /// Which word.
        word: Position,
        /// The replacement.
        with: &'static str,
    },
    /// Writes a `name: value` field twice.
    DuplicateField {
        /// Which field.
        field: Position,
    },
    /// Adds a field no configuration knows after an opening parenthesis.
    InsertUnknownField {
        /// After which `(`.
        paren: Position,
    },
    /// Puts a UTF-8 byte-order mark in front.
    PrependBom,
    /// Ends every line with CRLF.
    CrLf,
    /// Empties the input.
    Empty,
}

/// One to four mutations, byte-level and format-aware mixed.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..=4)
}

/// One to three mutations that keep the text's syntax more often than not
/// (numbers, variant names and fields changed, lines dropped), so that most
/// inputs reach the checks behind the parser.
pub fn value_mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let value = prop_oneof![
        4 => (position(), proptest::sample::select(NUMBERS))
            .prop_map(|(number, with)| Mutation::ReplaceNumber { number, with }),
        3 => (position(), proptest::sample::select(WORDS))
            .prop_map(|(word, with)| Mutation::ReplaceWord { word, with }),
        1 => position().prop_map(|field| Mutation::DuplicateField { field }),
        1 => position().prop_map(|line| Mutation::DeleteLine { line }),
    ];
    proptest::collection::vec(value, 1..=3)
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting =
        proptest::sample::select(NUMBERS.iter().chain(TEXT).copied().collect::<Vec<_>>());
    let inserted = prop_oneof![
        interesting
            .clone()
            .prop_map(|text| text.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        3 => (position(), 0..8_u8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        3 => (position(), inserted).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        2 => (position(), 1..16_usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => position().prop_map(|at| Mutation::Truncate { at }),
        2 => position().prop_map(|line| Mutation::DuplicateLine { line }),
        2 => position().prop_map(|line| Mutation::DeleteLine { line }),
        1 => (position(), position()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        2 => (position(), position()).prop_map(|(a, b)| Mutation::SwapTokens { a, b }),
        3 => (position(), interesting.clone())
            .prop_map(|(token, with)| Mutation::ReplaceToken { token, with }),
        4 => (position(), interesting)
            .prop_map(|(number, with)| Mutation::ReplaceNumber { number, with }),
        2 => (position(), proptest::sample::select(WORDS))
            .prop_map(|(word, with)| Mutation::ReplaceWord { word, with }),
        2 => position().prop_map(|field| Mutation::DuplicateField { field }),
        2 => position().prop_map(|paren| Mutation::InsertUnknownField { paren }),
        1 => Just(Mutation::PrependBom),
        1 => Just(Mutation::CrLf),
        1 => Just(Mutation::Empty),
    ]
}

/// Applies `mutations` in order to `input`.
pub fn apply_all(input: &mut Vec<u8>, mutations: &[Mutation]) {
    for mutation in mutations {
        mutation.apply(input);
    }
}

impl Mutation {
    /// Changes `input` in place; a mutation that finds nothing to act on (no
    /// lines, no numbers) leaves it as it is.
    pub fn apply(&self, input: &mut Vec<u8>) {
        match self {
            Self::FlipBit { at, bit } => {
                if !input.is_empty() {
                    let i = at.of(input.len());
                    input[i] ^= 1 << (bit % 8);
                }
            }
            Self::Insert { at, bytes } => {
                let i = at.of(input.len() + 1);
                input.splice(i..i, bytes.iter().copied());
            }
            Self::Delete { at, len } => {
                if !input.is_empty() {
                    let i = at.of(input.len());
                    let end = (i + len).min(input.len());
                    input.drain(i..end);
                }
            }
            Self::Truncate { at } => input.truncate(at.of(input.len() + 1)),
            Self::DuplicateLine { line } => {
                if let Some(range) = pick(&lines(input), line) {
                    let copy = input[range.clone()].to_vec();
                    input.splice(range.end..range.end, copy);
                }
            }
            Self::DeleteLine { line } => {
                if let Some(range) = pick(&lines(input), line) {
                    input.drain(range);
                }
            }
            Self::SwapLines { a, b } => swap(input, &lines(input), a, b),
            Self::SwapTokens { a, b } => swap(input, &tokens(input), a, b),
            Self::ReplaceToken { token, with } => {
                if let Some(range) = pick(&tokens(input), token) {
                    input.splice(range, with.bytes());
                }
            }
            Self::ReplaceNumber { number, with } => {
                if let Some(range) = pick(&numbers(input), number) {
                    input.splice(range, with.bytes());
                }
            }
            Self::ReplaceWord { word, with } => {
                let words: Vec<_> = tokens(input)
                    .into_iter()
                    .filter(|range| input[range.start].is_ascii_uppercase())
                    .collect();
                if let Some(range) = pick(&words, word) {
                    input.splice(range, with.bytes());
                }
            }
            Self::DuplicateField { field } => {
                if let Some(range) = pick(&fields(input), field) {
                    let mut copy = input[range.clone()].to_vec();
                    copy.extend_from_slice(b", ");
                    input.splice(range.start..range.start, copy);
                }
            }
            Self::InsertUnknownField { paren } => {
                let parens: Vec<_> = (0..input.len())
                    .filter(|&i| input[i] == b'(')
                    .map(|i| i + 1..i + 1)
                    .collect();
                if let Some(range) = pick(&parens, paren) {
                    input.splice(range, b"unknown_field: 1, ".iter().copied());
                }
            }
            Self::PrependBom => {
                input.splice(0..0, "\u{feff}".bytes());
            }
            Self::CrLf => {
                *input = input.iter().fold(Vec::new(), |mut out, &byte| {
                    if byte == b'\n' {
                        out.push(b'\r');
                    }
                    out.push(byte);
                    out
                });
            }
            Self::Empty => input.clear(),
        }
    }
}

fn pick(ranges: &[Range<usize>], index: &Position) -> Option<Range<usize>> {
    (!ranges.is_empty()).then(|| ranges[index.of(ranges.len())].clone())
}

/// Swaps the bytes of two non-overlapping ranges.
fn swap(input: &mut Vec<u8>, ranges: &[Range<usize>], a: &Position, b: &Position) {
    let (Some(a), Some(b)) = (pick(ranges, a), pick(ranges, b)) else {
        return;
    };
    let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
    if first.end > second.start {
        return;
    }
    let mut swapped = input[..first.start].to_vec();
    swapped.extend_from_slice(&input[second.clone()]);
    swapped.extend_from_slice(&input[first.end..second.start]);
    swapped.extend_from_slice(&input[first.clone()]);
    swapped.extend_from_slice(&input[second.end..]);
    *input = swapped;
}

/// Every line, each with its line end.
fn lines(input: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for (i, &byte) in input.iter().enumerate() {
        if byte == b'\n' {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < input.len() {
        ranges.push(start..input.len());
    }
    ranges
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'+' | b'-')
}

/// Words (identifiers and numbers), quoted strings, and single punctuation bytes; whitespace separates them.
fn tokens(input: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let start = i;
        let byte = input[i];
        if byte.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if is_word_byte(byte) {
            while i < input.len() && is_word_byte(input[i]) {
                i += 1;
            }
        } else if byte == b'"' {
            i += 1;
            while i < input.len() && input[i] != b'"' {
                i += if input[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(input.len());
        } else {
            i += 1;
        }
        ranges.push(start..i);
    }
    ranges
}

/// Numbers, also inside strings (a count in a JSON header's `"2"`), but not
/// digits that are part of a name (`Log2p1`, `sim0001`).
fn numbers(input: &[u8]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let start = i;
        let signed = input[i] == b'-' && input.get(i + 1).is_some_and(u8::is_ascii_digit);
        let after_name = i > 0 && is_word_byte(input[i - 1]);
        if (input[i].is_ascii_digit() || signed) && !after_name {
            i += 1;
            while i < input.len() && is_word_byte(input[i]) {
                i += 1;
            }
            ranges.push(start..i);
        } else {
            i += 1;
        }
    }
    ranges
}

/// `name: value` fields of RON text: from the name to the end of the value
/// (the next `,`, `)` or `]` outside brackets and strings).
fn fields(input: &[u8]) -> Vec<Range<usize>> {
    let tokens = tokens(input);
    let mut fields = Vec::new();
    for (k, name) in tokens.iter().enumerate() {
        let is_name = input[name.start].is_ascii_alphabetic() || input[name.start] == b'_';
        let colon_follows = tokens
            .get(k + 1)
            .is_some_and(|colon| &input[colon.clone()] == b":");
        if !is_name || !colon_follows {
            continue;
        }
        let mut depth = 0_usize;
        let mut end = None;
        for token in &tokens[k + 2..] {
            match input[token.start] {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => {
                    end = Some(token.start);
                    break;
                }
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 => {
                    end = Some(token.start);
                    break;
                }
                _ => {}
            }
        }
        if let Some(end) = end {
            fields.push(name.start..end);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position that picks element `i` of `len`.
    fn index(i: usize, len: usize) -> Position {
        let scaled = ((i as u128) << 64).div_ceil(len as u128);
        Position(u64::try_from(scaled).unwrap_or(u64::MAX))
    }

    #[test]
    fn tokens_split_words_strings_and_punctuation() {
        let text = br#"(rank: 2, name: "a b", x: -1.5e3)"#;
        let words: Vec<&[u8]> = tokens(text).into_iter().map(|r| &text[r]).collect();
        let expected: Vec<&[u8]> = vec![
            b"(",
            b"rank",
            b":",
            b"2",
            b",",
            b"name",
            b":",
            br#""a b""#,
            b",",
            b"x",
            b":",
            b"-1.5e3",
            b")",
        ];
        assert_eq!(words, expected);
    }

    #[test]
    fn numbers_are_found_in_strings_but_not_in_names() {
        let text = br#"{"layers":"2", "x": -1.5e3, "Log2p1": sim0001}"#;
        let found: Vec<&[u8]> = numbers(text).into_iter().map(|r| &text[r]).collect();
        let expected: Vec<&[u8]> = vec![b"2", b"-1.5e3"];
        assert_eq!(found, expected);
    }

    #[test]
    fn fields_end_at_the_comma_or_bracket_of_their_level() {
        let text = b"(a: Srrr(rank: 2, x: [1, 2]), b: 3)";
        let found: Vec<&[u8]> = fields(text).into_iter().map(|r| &text[r]).collect();
        let expected: Vec<&[u8]> = vec![
            b"a: Srrr(rank: 2, x: [1, 2])",
            b"rank: 2",
            b"x: [1, 2]",
            b"b: 3",
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn a_duplicated_field_is_written_twice() {
        let mut text = b"(rank: 2)".to_vec();
        Mutation::DuplicateField { field: index(0, 1) }.apply(&mut text);
        assert_eq!(text, b"(rank: 2, rank: 2)");
    }

    #[test]
    fn swapped_lines_trade_places() {
        let mut text = b"a\nbb\nccc\n".to_vec();
        Mutation::SwapLines {
            a: index(0, 3),
            b: index(2, 3),
        }
        .apply(&mut text);
        assert_eq!(text, b"ccc\nbb\na\n");
    }
}
