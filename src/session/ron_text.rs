//! Edits of session text that keep everything the user wrote around them.
//!
//! A small scanner splits RON text into tokens (strings, raw strings, chars
//! and comments are skipped over whole, so a bracket inside them never
//! counts) and finds the spans of a struct's fields and a list's items.
//! [`RonText`] then replaces one field's value, adds a field or appends a
//! list item, leaving every other byte (comments, layout) as it was. Only
//! text that parsed as a session is edited, and the caller checks that the
//! edited text reads back as intended.

use std::ops::Range;

/// One token of RON text: a bracket, a comma, a colon or anything else
/// (identifier, number, string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open(u8),
    Close,
    Comma,
    Colon,
    Atom,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// Splits `text` into tokens; `None` when a string, char or comment does not end.
fn tokenize(text: &str) -> Option<Vec<Token>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let kind = match bytes[i] {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = block_comment_end(bytes, i)?;
                continue;
            }
            b'"' => {
                i = quoted_end(bytes, i, b'"')?;
                Kind::Atom
            }
            b'\'' => {
                i = quoted_end(bytes, i, b'\'')?;
                Kind::Atom
            }
            b'r' if is_raw_string(bytes, i) => {
                i = raw_string_end(bytes, i)?;
                Kind::Atom
            }
            b @ (b'(' | b'[' | b'{') => {
                i += 1;
                Kind::Open(b)
            }
            b')' | b']' | b'}' => {
                i += 1;
                Kind::Close
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            b':' => {
                i += 1;
                Kind::Colon
            }
            _ => {
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !b"()[]{},:\"'/".contains(&bytes[i])
                {
                    i += 1;
                }
                if i == start {
                    i += 1;
                }
                Kind::Atom
            }
        };
        tokens.push(Token {
            kind,
            start,
            end: i,
        });
    }
    Some(tokens)
}

/// The end of the (possibly nested) block comment starting at `i`.
fn block_comment_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The end of the string or char quoted by `quote` starting at `i`.
fn quoted_end(bytes: &[u8], mut i: usize, quote: u8) -> Option<usize> {
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Whether a raw string (`r"..."`, `r#"..."#`) starts at `i`, rather than
/// a raw identifier (`r#None`) or a plain one.
fn is_raw_string(bytes: &[u8], i: usize) -> bool {
    let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
    bytes.get(i + 1 + hashes) == Some(&b'"')
}

/// The end of the raw string `r#"..."#` starting at `i`.
fn raw_string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    let hashes = bytes[i..].iter().take_while(|&&b| b == b'#').count();
    i += hashes;
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    while i < bytes.len() {
        if bytes[i] == b'"' && bytes[i + 1..].iter().take(hashes).all(|&b| b == b'#') {
            let end = i + 1 + hashes;
            return (end <= bytes.len()).then_some(end);
        }
        i += 1;
    }
    None
}

/// A struct field: its name and the spans of the whole field and its value.
#[derive(Debug, Clone)]
pub(super) struct Field {
    /// The field's name.
    pub name: String,
    /// Where the field's name begins.
    pub start: usize,
    /// The value, from its first to its last byte.
    pub value: Range<usize>,
    /// The byte after the field's comma, or after the value when it has none.
    pub end: usize,
    /// Whether a comma follows the value.
    pub comma: bool,
}

/// Session text with the token structure needed to edit it in place.
pub(super) struct RonText {
    text: String,
    tokens: Vec<Token>,
    /// For each opening bracket's token index, the index of its closing one.
    closing: Vec<Option<usize>>,
}

/// A bracketed group: the token indices of its opening and closing bracket.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    open: usize,
    close: usize,
}

impl RonText {
    /// Scans `text`; `None` when its brackets, strings or comments do not balance.
    pub fn new(text: &str) -> Option<RonText> {
        let tokens = tokenize(text)?;
        let mut closing = vec![None; tokens.len()];
        let mut stack = Vec::new();
        for (index, token) in tokens.iter().enumerate() {
            match token.kind {
                Kind::Open(_) => stack.push(index),
                Kind::Close => closing[stack.pop()?] = Some(index),
                _ => {}
            }
        }
        stack.is_empty().then(|| RonText {
            text: text.to_string(),
            tokens,
            closing,
        })
    }

    /// The text as edited so far.
    pub fn into_text(self) -> String {
        self.text
    }

    /// The document's top-level struct: the first `(` outside attributes.
    pub fn root(&self) -> Option<Group> {
        let mut index = 0;
        while index < self.tokens.len() {
            match self.tokens[index].kind {
                Kind::Open(b'(') => return self.group(index),
                Kind::Open(_) => index = self.closing[index]? + 1,
                _ => index += 1,
            }
        }
        None
    }

    fn group(&self, open: usize) -> Option<Group> {
        Some(Group {
            open,
            close: self.closing[open]?,
        })
    }

    /// The comma-separated entries of `group`, as token index ranges.
    fn entries(&self, group: Group) -> Vec<Range<usize>> {
        let mut entries = Vec::new();
        let mut start = group.open + 1;
        let mut index = start;
        while index < group.close {
            match self.tokens[index].kind {
                Kind::Open(_) => index = self.closing[index].unwrap_or(group.close) + 1,
                Kind::Comma => {
                    entries.push(start..index);
                    index += 1;
                    start = index;
                }
                _ => index += 1,
            }
        }
        if start < group.close {
            entries.push(start..group.close);
        }
        entries
    }

    /// The fields of the struct `group`.
    pub fn fields(&self, group: Group) -> Vec<Field> {
        self.entries(group)
            .into_iter()
            .filter_map(|entry| {
                let [name, colon, ..] = self.tokens.get(entry.clone())? else {
                    return None;
                };
                if name.kind != Kind::Atom || colon.kind != Kind::Colon || entry.len() < 3 {
                    return None;
                }
                let last = self.tokens[entry.end - 1];
                let comma = self.tokens.get(entry.end).filter(|t| t.kind == Kind::Comma);
                Some(Field {
                    name: self.text[name.start..name.end].to_string(),
                    start: name.start,
                    value: self.tokens[entry.start + 2].start..last.end,
                    end: comma.map_or(last.end, |c| c.end),
                    comma: comma.is_some(),
                })
            })
            .collect()
    }

    /// The field `name` of the struct `group`.
    pub fn field(&self, group: Group, name: &str) -> Option<Field> {
        self.fields(group).into_iter().find(|f| f.name == name)
    }

    /// The bracketed group that is (or ends) the value of `field`, e.g. the
    /// `(...)` of `Srrr(...)` or the `[...]` of a list.
    pub fn value_group(&self, field: &Field) -> Option<Group> {
        self.group_in(field.value.clone())
    }

    /// The first bracketed group starting within the byte span `span`.
    fn group_in(&self, span: Range<usize>) -> Option<Group> {
        let open = self
            .tokens
            .iter()
            .position(|t| t.start >= span.start && t.start < span.end)?;
        let open = (open..self.tokens.len())
            .take_while(|&i| self.tokens[i].start < span.end)
            .find(|&i| matches!(self.tokens[i].kind, Kind::Open(_)))?;
        self.group(open)
    }

    /// The items of the list `group`, as byte spans, each with the struct
    /// group inside it (if the item is a struct).
    pub fn items(&self, group: Group) -> Vec<(Range<usize>, Option<Group>)> {
        self.entries(group)
            .into_iter()
            .map(|entry| {
                let span = self.tokens[entry.start].start..self.tokens[entry.end - 1].end;
                let inner = self.group_in(span.clone());
                (span, inner)
            })
            .collect()
    }

    /// The text of a byte span.
    pub fn slice(&self, span: Range<usize>) -> &str {
        &self.text[span]
    }

    /// The leading whitespace of the line holding byte `at`.
    fn indent_at(&self, at: usize) -> String {
        let line_start = self.text[..at].rfind('\n').map_or(0, |n| n + 1);
        self.text[line_start..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect()
    }

    /// Replaces `field`'s value by `value` (multi-line RON written from
    /// column 0; its lines are indented like the field).
    pub fn replace_value(&mut self, field: &Field, value: &str) {
        let indented = indent(value, &self.indent_at(field.start));
        self.text.replace_range(field.value.clone(), &indented);
    }

    /// Adds the field `name: value,` after the last field of the struct
    /// `group`; `None` when the struct has no field to line up with.
    pub fn add_field(&mut self, group: Group, name: &str, value: &str) -> Option<()> {
        let last = self.fields(group).pop()?;
        let line = self.indent_at(last.start);
        let entry = format!("{name}: {}", indent(value, &line));
        self.insert_after(last.end, last.comma, &line, &entry);
        Some(())
    }

    /// Appends `item` to the list `group`, lined up with its last item;
    /// `None` when the list is empty.
    pub fn append_item(&mut self, group: Group, item: &str) -> Option<()> {
        let entries = self.entries(group);
        let last = entries.last()?;
        let start = self.tokens[last.start].start;
        let end_token = self.tokens[last.end - 1];
        let comma = self
            .tokens
            .get(last.end)
            .filter(|t| t.kind == Kind::Comma && last.end < group.close);
        let line = self.indent_at(start);
        let end = comma.map_or(end_token.end, |c| c.end);
        self.insert_after(end, comma.is_some(), &line, &indent(item, &line));
        Some(())
    }

    /// Inserts `entry,` on a new line indented by `line` after byte `end`,
    /// adding the comma the previous entry lacks.
    fn insert_after(&mut self, end: usize, has_comma: bool, line: &str, entry: &str) {
        let comma = if has_comma { "" } else { "," };
        self.text
            .insert_str(end, &format!("{comma}\n{line}{entry},"));
    }
}

/// `value` with every line after the first indented by `prefix`.
fn indent(value: &str, prefix: &str) -> String {
    value.trim_end().replace('\n', &format!("\n{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r##"// a comment with a ( bracket
#![enable(implicit_some)]
(
  version: 1, /* block ) */
  experiments: [
    (
      name: "a(b",  // the name
      model: Srrr(rank: 2),
    ),
    (name: r#"x"y"#, model: Sbnn(genes: 3), detail: r#None)
  ],
)
"##;

    #[test]
    fn fields_and_items_skip_strings_and_comments() {
        let doc = RonText::new(TEXT).unwrap();
        let root = doc.root().unwrap();
        let names: Vec<_> = doc.fields(root).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["version", "experiments"]);
        let list = doc.field(root, "experiments").unwrap();
        let items = doc.items(doc.value_group(&list).unwrap());
        assert_eq!(items.len(), 2);
        let first = doc.fields(items[0].1.unwrap());
        assert_eq!(doc.slice(first[0].value.clone()), "\"a(b\"");
        assert_eq!(doc.slice(first[1].value.clone()), "Srrr(rank: 2)");
        let second = doc.fields(items[1].1.unwrap());
        assert_eq!(doc.slice(second[0].value.clone()), "r#\"x\"y\"#");
        assert_eq!(
            doc.slice(second[2].value.clone()),
            "r#None",
            "a raw identifier"
        );
        assert!(!second[2].comma);
    }

    #[test]
    fn edits_keep_the_comments_and_line_up_with_their_neighbours() {
        let mut doc = RonText::new(TEXT).unwrap();
        let root = doc.root().unwrap();
        let list = doc.field(root, "experiments").unwrap();
        let group = doc.value_group(&list).unwrap();
        let second = doc.items(group)[1].1.unwrap();
        doc.add_field(second, "result", "(\n  x: 1,\n)").unwrap();
        let doc_text = doc.into_text();
        assert!(doc_text.contains("detail: r#None,\n    result: (\n      x: 1,\n    ),"));

        let mut doc = RonText::new(&doc_text).unwrap();
        let root = doc.root().unwrap();
        let list = doc.field(root, "experiments").unwrap();
        let group = doc.value_group(&list).unwrap();
        let first = doc.items(group)[0].1.unwrap();
        let model = doc.field(first, "model").unwrap();
        doc.replace_value(&model, "Srrr(\n  rank: 3,\n)");
        let root = RonText::new(&doc.into_text()).unwrap();
        let text = root.into_text();
        assert!(text.contains("      model: Srrr(\n        rank: 3,\n      ),"));
        assert!(text.contains("// the name") && text.contains("/* block ) */"));
        assert!(text.starts_with("// a comment with a ( bracket"));
    }

    #[test]
    fn unbalanced_text_is_refused() {
        assert!(RonText::new("( a: \"open").is_none());
        assert!(RonText::new("( a: [1, 2 )").is_none());
        assert!(RonText::new("( /* open").is_none());
    }
}
