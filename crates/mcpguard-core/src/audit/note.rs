//! The note of mcpguard's Events, written by the webhook's Event recorder and read back by
//! `mcpguard audit`. The format and its reader live together, so they cannot drift apart:
//!
//! `policy "P" denied CREATE of pods "x" by USER: check1, check2`
//!
//! (`admitted` instead of `denied` in warn and audit mode; the policy and object names are
//! Rust `{:?}` strings, so any text in them reads back exactly). The user comes last but for
//! the checks, whose IDs never contain `": "`: a user name may. A note is cut at the API's
//! 1 KiB limit; the reader keeps the checks that fit (the last may end in `...`).

use crate::harden::truncate_at;

/// The `reportingController` of every Event mcpguard records.
pub const REPORTING_CONTROLLER: &str = "mcpguard.dev/webhook";
/// The reason of a violation Event (denied, or admitted with violations).
pub const REASON_VIOLATION: &str = "PolicyViolation";
/// The reason of a mutation Event.
pub const REASON_MUTATED: &str = "PolicyMutated";
/// The API refuses an Event note over 1 KiB.
pub const MAX_NOTE_BYTES: usize = 1024;
/// Marks the note of an Event left on the request's object although the object claims a
/// controller that could not be verified ([`with_unverified_owner`]); the reader strips it.
pub const UNVERIFIED_OWNER_MARK: &str = " [unverified owner: ";

/// What happened to a request with violations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Denied,
    /// Warn or audit mode: admitted, violations recorded.
    Admitted,
}

impl Verdict {
    /// The Event's `action`.
    pub fn action(self) -> &'static str {
        match self {
            Verdict::Denied => "Denied",
            Verdict::Admitted => "Admitted",
        }
    }

    /// The word in the note.
    fn verb(self) -> &'static str {
        match self {
            Verdict::Denied => "denied",
            Verdict::Admitted => "admitted",
        }
    }
}

/// A violation Event's note, in parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViolationNote {
    pub policy: String,
    pub verdict: Verdict,
    /// `CREATE`, `UPDATE`, ... (one word).
    pub operation: String,
    /// The resource's plural (`pods`, `deployments`; one word).
    pub resource: String,
    /// The object's name (for a pod created from `generateName`, the prefix).
    pub object: String,
    pub user: String,
    /// Check IDs (never containing `", "` or `": "`).
    pub checks: Vec<String>,
}

impl ViolationNote {
    /// The note, cut to [`MAX_NOTE_BYTES`].
    pub fn format(&self) -> String {
        let note = format!(
            "policy {:?} {} {} of {} {:?} by {}: {}",
            self.policy,
            self.verdict.verb(),
            self.operation,
            self.resource,
            self.object,
            self.user,
            self.checks.join(", ")
        );
        truncate_at(note, MAX_NOTE_BYTES)
    }

    /// The parts of a violation note. `None` for a note of another shape (e.g. a
    /// `PolicyMutated` one). A trailing unverified-owner mention is ignored.
    pub fn parse(note: &str) -> Option<ViolationNote> {
        let note = match note.rfind(UNVERIFIED_OWNER_MARK) {
            Some(at) if note.ends_with(']') => &note[..at],
            _ => note,
        };
        let rest = note.strip_prefix("policy ")?;
        let (policy, rest) = split_debug_string(rest)?;
        let (verdict, rest) = match rest.strip_prefix(" denied ") {
            Some(rest) => (Verdict::Denied, rest),
            None => (Verdict::Admitted, rest.strip_prefix(" admitted ")?),
        };
        let (operation, rest) = rest.split_once(" of ")?;
        if operation.is_empty() || operation.contains(' ') {
            return None;
        }
        let (resource, rest) = rest.split_once(' ')?;
        if resource.is_empty() {
            return None;
        }
        let (object, rest) = split_debug_string(rest)?;
        let rest = rest.strip_prefix(" by ")?;
        // Check IDs never contain ": "; a user name might.
        let (user, checks) = rest.rsplit_once(": ")?;
        let checks = checks
            .split(", ")
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        Some(ViolationNote {
            policy,
            verdict,
            operation: operation.to_owned(),
            resource: resource.to_owned(),
            object,
            user: user.to_owned(),
            checks,
        })
    }
}

/// A mutation Event's note: `policy "P" mutated pods "x" for USER: set FIELDS`, cut to
/// [`MAX_NOTE_BYTES`]. The reader leaves it alone ([`ViolationNote::parse`] says `None`).
pub fn mutation_note(
    policy: &str,
    resource: &str,
    object: &str,
    user: &str,
    fields: &str,
) -> String {
    truncate_at(
        format!("policy {policy:?} mutated {resource} {object:?} for {user}: set {fields}"),
        MAX_NOTE_BYTES,
    )
}

/// `note` for an Event left on the request's object although it claims the controller
/// `kind`/`name`: the claim is named after the mark, which always fits, the note cut to
/// make room.
pub fn with_unverified_owner(note: &str, kind: &str, name: &str) -> String {
    let mention = format!("{UNVERIFIED_OWNER_MARK}{kind} {name:?}]");
    let room = MAX_NOTE_BYTES.saturating_sub(mention.len());
    format!("{}{mention}", truncate_at(note.to_owned(), room))
}

/// A string as `{:?}` writes it, at the start of `text`: its value and what follows it.
fn split_debug_string(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[at + 1..])),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '0' => value.push('\0'),
                    'u' => {
                        // \u{XXXX}
                        let mut hex = String::new();
                        let (_, open) = chars.next()?;
                        if open != '{' {
                            return None;
                        }
                        for (_, h) in chars.by_ref() {
                            if h == '}' {
                                break;
                            }
                            hex.push(h);
                        }
                        value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    other => value.push(other),
                }
            }
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests;
