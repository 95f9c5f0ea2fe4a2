//! Decode errors without the values they failed on. serde's messages quote the input
//! (`invalid type: string "hunter2", expected i64`, `unknown variant `hunter2``), and those
//! messages reach denials, PolicyReports, CLI output and logs. Every decode whose error can
//! be shown goes through here: the message keeps the field path and the expected type and
//! names only the kind of value it got (`invalid type: string, expected i64`).
//!
//! Unknown-field, missing-field and duplicate-field errors name a key, not a value, and are
//! kept as they are.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A value that did not decode: where, and why, with the value itself left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Dotted field path (`spec.containers[0].env[0].value`); empty for the whole value.
    pub path: String,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `raw` as a `T`. `base` is the path of `raw` itself (`spec`), prefixed to the path
/// of the failing field.
pub fn decode<T: DeserializeOwned>(raw: &Value, base: &str) -> Result<T, DecodeError> {
    // The path is tracked only once decoding has failed: tracking it costs every decode,
    // and failures are rare.
    T::deserialize(raw).map_err(|_| match serde_path_to_error::deserialize::<_, T>(raw) {
        Err(err) => {
            let mut decoded = path_error(&err, base);
            if let Some(Value::String(value)) = value_at(raw, err.path()) {
                decoded.message = withhold(&decoded.message, value);
            }
            decoded
        }
        // Unreachable for a deterministic Deserialize; still an error, not a panic.
        Ok(_) => DecodeError {
            path: base.to_owned(),
            message: "cannot be decoded".to_owned(),
        },
    })
}

/// The value a `serde_path_to_error` path points at, if the path leads to one.
fn value_at<'v>(raw: &'v Value, path: &serde_path_to_error::Path) -> Option<&'v Value> {
    use serde_path_to_error::Segment;
    path.iter().try_fold(raw, |value, segment| match segment {
        Segment::Seq { index } => value.get(index),
        Segment::Map { key } => value.get(key),
        Segment::Enum { .. } | Segment::Unknown => Some(value),
    })
}

/// A custom deserializer's message (not one of serde's own forms, which [`scrub`] knows)
/// may still quote the string it refused, as `Debug` or as is: both are withheld. Strings
/// shorter than three characters are left, so that a one-letter value cannot blank out
/// every occurrence of that letter.
fn withhold(message: &str, value: &str) -> String {
    let serde_form = [
        INVALID_TYPE,
        INVALID_VALUE,
        "unknown variant",
        "unknown field",
    ]
    .iter()
    .any(|form| message.contains(form));
    if serde_form || value.chars().count() < 3 || !message.contains(value) {
        return message.to_owned();
    }
    let quoted = message.replace(&format!("{value:?}"), "\"<withheld>\"");
    replace_whole_words(&quoted, value, "<withheld>")
}

/// `text` with each occurrence of `word` that is not part of a longer word replaced.
fn replace_whole_words(text: &str, word: &str, replacement: &str) -> String {
    let is_word_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if is_word_char(before) || is_word_char(after) {
            out.push_str(word);
        } else {
            out.push_str(replacement);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Parses JSON `bytes` as a `T`; the error names the failing field's path, the line and
/// column, and the kind of value found, never the value.
pub fn decode_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|err| {
        // Syntax errors have no path to add; only data errors are parsed a second time.
        if !err.is_data() {
            return DecodeError {
                path: String::new(),
                message: json_error(&err),
            };
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Err(err) => path_error(&err, ""),
            Ok(_) => DecodeError {
                path: String::new(),
                message: json_error(&err),
            },
        }
    })
}

/// A `serde_path_to_error` error, its path joined under `base`, its message scrubbed.
pub fn path_error<E: fmt::Display>(err: &serde_path_to_error::Error<E>, base: &str) -> DecodeError {
    DecodeError {
        path: join(base, &err.path().to_string()),
        message: scrub(&err.inner().to_string()),
    }
}

/// A serde_json error (syntax or data), scrubbed; the line and column are kept.
pub fn json_error(err: &serde_json::Error) -> String {
    scrub(&err.to_string())
}

/// A YAML parse error, scrubbed and without the source snippet serde-saphyr renders by
/// default (the snippet quotes the lines around the error, values included), in the words
/// of [`PlainYamlMessages`] rather than the library's.
pub fn yaml_error(err: &serde_saphyr::Error) -> String {
    scrub(
        &err.without_snippet()
            .render_with_formatter(&PlainYamlMessages),
    )
}

/// The longest duplicate key a YAML error names. Keys are the author's, and a key is
/// rarely a secret, but an error line must not grow with the input.
const MAX_KEY_CHARS: usize = 64;

/// serde-saphyr's messages, except the ones written for the library's callers: a duplicate
/// key said "set DuplicateKeyPolicy in Options if acceptable" and a second document "use
/// from_str_multiple", advice only a Rust programmer holding the parser could follow.
pub struct PlainYamlMessages;

impl serde_saphyr::MessageFormatter for PlainYamlMessages {
    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> std::borrow::Cow<'a, str> {
        use std::borrow::Cow;
        match err {
            serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
                let shown: String = key.chars().take(MAX_KEY_CHARS).collect();
                let cut = if shown.len() < key.len() { "…" } else { "" };
                Cow::Owned(format!("duplicate key `{shown}{cut}`"))
            }
            serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => {
                Cow::Borrowed("duplicate key")
            }
            serde_saphyr::Error::MultipleDocuments { .. } => Cow::Borrowed(
                "the file holds more than one YAML document; only one is read here \
                 (remove the `---` separators, or split the file)",
            ),
            _ => serde_saphyr::DefaultMessageFormatter.format_message(err),
        }
    }
}

fn join(base: &str, inner: &str) -> String {
    if inner.is_empty() || inner == "." {
        base.to_owned()
    } else if base.is_empty() {
        inner.to_owned()
    } else if inner.starts_with('[') {
        format!("{base}{inner}")
    } else {
        format!("{base}.{inner}")
    }
}

const INVALID_TYPE: &str = "invalid type: ";
const INVALID_VALUE: &str = "invalid value: ";
const UNKNOWN_VARIANT: &str = "unknown variant `";
const EXPECTED: &str = ", expected ";

/// serde's message with every value it quotes replaced by the value's kind:
/// `invalid type: integer `982451653`, expected a string` becomes
/// `invalid type: integer, expected a string`; `unknown variant `x`, expected one of ...`
/// becomes `unknown variant, expected one of ...`. Linear in the message.
pub fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = [INVALID_TYPE, INVALID_VALUE, UNKNOWN_VARIANT]
            .into_iter()
            .filter_map(|marker| rest.find(marker).map(|at| (at, marker)))
            .min_by_key(|(at, _)| *at);
        let Some((at, marker)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let after = &rest[at + marker.len()..];
        if marker == UNKNOWN_VARIANT {
            out.push_str("unknown variant");
            // The variant is written raw (no escaping), so its end is the last
            // "`, expected ": the list of variants after it comes from code.
            rest = match after.rfind(&format!("`{EXPECTED}")) {
                Some(end) => &after[end + 1..],
                None => "",
            };
        } else {
            out.push_str(marker);
            let (kind, consumed) = unexpected_kind(after);
            out.push_str(kind);
            rest = &after[consumed..];
        }
    }
}

/// The kind of the value that serde's `Unexpected` display at the start of `text` names,
/// and how many bytes of `text` that display takes.
fn unexpected_kind(text: &str) -> (&'static str, usize) {
    // Displays that quote the value between backticks.
    const BACKTICKED: &[(&str, &str)] = &[
        ("boolean `", "boolean"),
        ("integer `", "integer"),
        ("floating point `", "floating point"),
        ("character `", "character"),
    ];
    // Displays that carry no value.
    const BARE: &[&str] = &[
        "unit value",
        "null",
        "Option value",
        "newtype struct",
        "sequence",
        "map",
        "enum",
        "unit variant",
        "newtype variant",
        "tuple variant",
        "struct variant",
        "byte array",
    ];
    if let Some(quoted) = text.strip_prefix("string \"") {
        let consumed = "string \"".len() + end_of_debug_string(quoted);
        return ("string", consumed);
    }
    for (prefix, kind) in BACKTICKED {
        if let Some(value) = text.strip_prefix(prefix) {
            // A character may itself be a backtick: skip it before looking for the close.
            let skip = if *kind == "character" {
                value.chars().next().map_or(0, char::len_utf8)
            } else {
                0
            };
            let close = value[skip..]
                .find('`')
                .map_or(value.len(), |i| skip + i + 1);
            return (*kind, prefix.len() + close);
        }
    }
    for bare in BARE {
        if let Some(after) = text.strip_prefix(bare)
            && (after.is_empty() || after.starts_with(EXPECTED))
        {
            return (bare, bare.len());
        }
    }
    // `Unexpected::Other` or a custom display: its text is not known to be free of input.
    let end = text.find(EXPECTED).unwrap_or(text.len());
    ("a value", end)
}

/// The length of a Rust-`Debug`-escaped string body up to and including its closing quote
/// (all of `text` if it is cut off).
fn end_of_debug_string(text: &str) -> usize {
    let mut escaped = false;
    for (index, byte) in text.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return index + 1,
            _ => {}
        }
    }
    text.len()
}

#[cfg(test)]
mod tests;
