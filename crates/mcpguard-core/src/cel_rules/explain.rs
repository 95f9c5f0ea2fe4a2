//! Evaluation errors in words that quote nothing of the input: what the expression names (a
//! function, an operator, a field) and the types involved, never a value, which may be a
//! secret on its way to a denial, a warning, an Event and a PolicyReport.

use kube_cel::cel;

/// Error text is kept to this many characters (a map key quoted from a long expression), so a
/// denial stays readable.
pub(super) const MAX_ERROR_CHARS: usize = 200;

/// An evaluation error in words that quote nothing of the input. The cel and kube-cel errors
/// carry the values involved (`Division by zero of Int(1)`, a whole map, the string that
/// `duration()`, `matches()` or `quantity()` could not parse), and a value may be a secret
/// that would then reach a denial, a warning, an Event and a PolicyReport. So only what the
/// expression itself names (a function, an operator, a field) and the types involved are told.
pub(super) fn explain(err: &cel::ExecutionError, source: &str) -> String {
    use cel::ExecutionError as E;
    let text = match err {
        E::NoSuchKey(key) if names_key(source, key) => {
            format!("no such key: {key} (test optional fields with has() first)")
        }
        E::NoSuchKey(_) => {
            "no such key (the key is input, not shown; test optional fields with has() first)"
                .into()
        }
        E::InvalidArgumentCount { expected, actual } => {
            format!("wrong number of arguments: expected {expected}, got {actual}")
        }
        E::UnsupportedTargetType { target } => {
            format!("unsupported argument type {}", target.type_of())
        }
        E::NotSupportedAsMethod { method, target } => {
            format!("{method}() is not supported on type {}", target.type_of())
        }
        E::UnsupportedKeyType(key) => format!("type {} cannot be a map key", key.type_of()),
        E::UnexpectedType { want, .. } => {
            format!(
                "an argument has the wrong type (want {})",
                cel_type_name(want)
            )
        }
        E::NoSuchOverload => "no such overload".into(),
        E::UndeclaredReference(name) => format!("undeclared reference to {name:?}"),
        E::MissingArgumentOrTarget => "missing argument or target".into(),
        E::ValuesNotComparable(a, b) => {
            format!(
                "type {} cannot be compared to type {}",
                a.type_of(),
                b.type_of()
            )
        }
        E::UnsupportedUnaryOperator(op, value) => {
            format!(
                "unsupported unary operator '{op}' on type {}",
                value.type_of()
            )
        }
        E::UnsupportedBinaryOperator(op, a, b) => format!(
            "unsupported binary operator '{op}' on types {} and {}",
            a.type_of(),
            b.type_of()
        ),
        E::UnsupportedMapIndex(index) => {
            format!("a map cannot be indexed by type {}", index.type_of())
        }
        E::UnsupportedListIndex(index) => {
            format!("a list cannot be indexed by type {}", index.type_of())
        }
        E::UnsupportedIndex(index, container) => format!(
            "type {} cannot be indexed by type {}",
            container.type_of(),
            index.type_of()
        ),
        E::UnsupportedFunctionCallIdentifierType(_) => "unsupported function call".into(),
        E::UnsupportedFieldsConstruction(_) => "message construction is not supported".into(),
        E::FunctionError { function, message } => function_failure(function, message),
        E::DivisionByZero(_) => "division by zero".into(),
        E::RemainderByZero(_) => "remainder by zero".into(),
        E::Overflow(op, a, b) => format!(
            "integer overflow in '{op}' on types {} and {}",
            a.type_of(),
            b.type_of()
        ),
        E::IndexOutOfBounds(_) => "index out of bounds".into(),
        _ => "evaluation failed".into(),
    };
    cut_short(text)
}

/// `text`, cut to [`MAX_ERROR_CHARS`] characters and marked `...` when longer.
pub(super) fn cut_short(text: String) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Whether the expression spells out `key` as a field (`.key`) or a string literal, so that
/// quoting it tells nothing the policy does not already say.
fn names_key(source: &str, key: &str) -> bool {
    !key.is_empty()
        && [format!(".{key}"), format!("'{key}'"), format!("\"{key}\"")]
            .iter()
            .any(|spelled| source.contains(spelled.as_str()))
}

/// A Rust type name from an `UnexpectedType` error, as the CEL type it stands for.
fn cel_type_name(rust: &str) -> &str {
    match rust.replace(' ', "").as_str() {
        "Arc<String>" | "String" => "string",
        "i64" => "int",
        "u64" => "uint",
        "f64" => "double",
        "bool" => "bool",
        "Arc<Vec<u8>>" => "bytes",
        "Arc<Vec<Value>>" => "list",
        "Map" => "map",
        "Duration" | "chrono::Duration" => "duration",
        "DateTime<FixedOffset>" | "chrono::DateTime<chrono::FixedOffset>" => "timestamp",
        _ => rust,
    }
}

/// Failures of the cel and kube-cel functions that carry no value: their fixed texts (every
/// one of them, from the sources of the pinned versions).
#[rustfmt::skip]
const VALUE_FREE_FAILURES: &[&str] = &[
    "at least one argument required", "cannot call max on empty list",
    "cannot call min on empty list", "cannot compare NaN values",
    "cannot compare values of different types", "cannot sum values of this type",
    "depth must be non-negative", "expected CIDR or string", "expected CIDR or string argument",
    "expected CIDR type", "expected Format type", "expected IP or string",
    "expected IP or string argument", "expected IP type", "expected Quantity or int",
    "expected Quantity type", "expected Semver type", "expected URL type", "expected argument",
    "expected int argument", "expected int argument for depth", "expected int, uint, or double",
    "expected numeric argument", "expected string argument", "expected string or CIDR argument",
    "expected string pattern", "expected timestamp or duration", "failed to downcast",
    "field must be string", "format string ends after precision", "format string ends with '%'",
    "format() requires a list argument", "integer overflow", "invalid precision in format string",
    "missing argument", "optional.none() dereference", "quantity is not an integer",
    "quantity too large for integer", "range argument must be non-negative",
    "shift amount must be between 0 and 63", "unsigned integer overflow", "unsupported function",
];

/// A function's failure: its fixed text when it has one, else what kind of argument it could
/// not use. Other texts quote the argument (`duration()`'s parse error is the whole string), so
/// they are never passed on.
fn function_failure(function: &str, message: &str) -> String {
    if VALUE_FREE_FAILURES.contains(&message) {
        return format!("{function}() failed: {message}");
    }
    let kind = match function {
        "duration" => "its argument is not a valid duration",
        "timestamp" => "its argument is not a valid timestamp",
        "matches" | "find" | "findAll" => "the pattern is not a valid regular expression",
        "quantity" => "its argument is not a valid quantity",
        "url" => "its argument is not a valid URL",
        "ip" | "ip.isCanonical" | "containsIP" => "its argument is not a valid IP address",
        "cidr" | "containsCIDR" => "its argument is not a valid CIDR",
        "semver" => "its argument is not a valid semantic version",
        "base64.decode" => "its argument is not valid base64",
        "int" | "uint" | "double" if message.starts_with("string parse error") => {
            "its argument is not a number of that type"
        }
        "format" => "the format string does not fit its arguments",
        "charAt" | "substring" | "slice" => "an index is out of range",
        _ => "its argument cannot be used (the value is not shown)",
    };
    format!("{function}() failed: {kind}")
}

#[cfg(test)]
mod tests;
