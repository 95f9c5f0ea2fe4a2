//! The JSON Patch of a hardening, written down change by change as the pod is hardened.
//!
//! The webhook answers with a patch. Diffing the whole spec against its hardened copy cost
//! more than the hardening itself, so each change records its own operation instead: `add`
//! where a field was absent, `replace` where it held something else, `remove` for what is
//! taken out, and one operation with the final value for an object or list that the
//! hardening created (rather than one per member). Paths are RFC 6901 pointers; jsonptr's
//! `Token::new` escapes `~` and `/` in keys (`nodeSelector` keys, resource names).

use json_patch::jsonptr::{PointerBuf, Token};
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};

/// Where a value being changed sits in the pod. `None` when its changes are not written down
/// one by one: nobody asked for a patch, or an enclosing object is new and is written down
/// whole once complete.
pub(super) type At = Option<PointerBuf>;

/// The operations that turn the input pod into the hardened one, in order; empty when not
/// recording (a workload's pods and the CLI need only the hardened pod).
#[derive(Debug, Default)]
pub struct Changes {
    ops: Vec<PatchOperation>,
    recording: bool,
}

impl Changes {
    /// Writes the operations down, for a patch.
    pub fn recorded() -> Self {
        Changes {
            ops: Vec::new(),
            recording: true,
        }
    }

    /// Writes nothing down.
    pub fn unrecorded() -> Self {
        Changes::default()
    }

    pub fn is_recording(&self) -> bool {
        self.recording
    }

    pub fn into_patch(self) -> Patch {
        Patch(self.ops)
    }

    /// The place of the pod's member `key` (`/spec`), if recording.
    pub(super) fn root(&self, key: &str) -> At {
        self.recording.then(|| PointerBuf::from_tokens([key]))
    }

    /// `map[key] = value`: `add` where the key was absent, `replace` where it held a value.
    pub(super) fn set(&mut self, map: &mut Map<String, Value>, at: &At, key: &str, value: Value) {
        if let Some(at) = at {
            let path = at.with_trailing_token(key);
            self.ops.push(if map.contains_key(key) {
                PatchOperation::Replace(ReplaceOperation {
                    path,
                    value: value.clone(),
                })
            } else {
                PatchOperation::Add(AddOperation {
                    path,
                    value: value.clone(),
                })
            });
        }
        map.insert(key.to_owned(), value);
    }

    fn add(&mut self, at: &At, value: &Value) {
        if let Some(path) = at {
            self.ops.push(PatchOperation::Add(AddOperation {
                path: path.clone(),
                value: value.clone(),
            }));
        }
    }

    fn replace(&mut self, at: &At, value: &Value) {
        if let Some(path) = at {
            self.ops.push(PatchOperation::Replace(ReplaceOperation {
                path: path.clone(),
                value: value.clone(),
            }));
        }
    }

    /// The value at `at` was removed.
    pub(super) fn removed(&mut self, at: &At) {
        if let Some(path) = at {
            self.ops.push(PatchOperation::Remove(RemoveOperation {
                path: path.clone(),
            }));
        }
    }
}

/// The place of `token` (a key or an index) in the value at `at`.
pub(super) fn child<'t>(at: &At, token: impl Into<Token<'t>>) -> At {
    at.as_ref().map(|at| at.with_trailing_token(token))
}

/// What `map[key]` held before the hardening opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Before {
    Absent,
    /// An object: its changes are written down member by member.
    Object,
    /// A null, or a non-object the API server would have refused: replaced by an object.
    Other,
}

/// When a [`Slot`] that ends up empty is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IfEmpty {
    Keep,
    /// Removed if the pod did not have the key: an empty object created for nothing would be
    /// a needless patch.
    DropIfNew,
    /// Removed whatever it was (empty `requests`/`limits` say nothing).
    Drop,
}

/// An object at `map[key]` being filled in: the one there, or a new one.
pub(super) struct Slot {
    key: &'static str,
    at: At,
    before: Before,
}

impl Slot {
    /// Makes `map[key]` an object (creating it, or replacing a null or a non-object).
    pub(super) fn open(map: &mut Map<String, Value>, at: &At, key: &'static str) -> Slot {
        let before = match map.get(key) {
            None => Before::Absent,
            Some(Value::Object(_)) => Before::Object,
            Some(_) => Before::Other,
        };
        if before != Before::Object {
            map.insert(key.to_owned(), Value::Object(Map::new()));
        }
        Slot {
            key,
            at: child(at, key),
            before,
        }
    }

    /// The object (the caller's `map`, as passed to [`Slot::open`]).
    pub(super) fn object<'m>(&self, map: &'m mut Map<String, Value>) -> &'m mut Map<String, Value> {
        super::object_entry(map, self.key)
    }

    /// Where the object's members are written down: `None` for a new object, which
    /// [`Slot::close`] writes down whole.
    pub(super) fn members(&self) -> At {
        match self.before {
            Before::Object => self.at.clone(),
            Before::Absent | Before::Other => None,
        }
    }

    /// Removes the object if it is empty and `if_empty` says so; writes down a new object
    /// whole, or the removal of one the pod had.
    pub(super) fn close(
        self,
        map: &mut Map<String, Value>,
        if_empty: IfEmpty,
        changes: &mut Changes,
    ) {
        let empty = map
            .get(self.key)
            .is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
        let drop = empty
            && match if_empty {
                IfEmpty::Keep => false,
                IfEmpty::DropIfNew => self.before == Before::Absent,
                IfEmpty::Drop => true,
            };
        if drop {
            map.remove(self.key);
            if self.before != Before::Absent {
                changes.removed(&self.at);
            }
            return;
        }
        let Some(value) = map.get(self.key) else {
            return;
        };
        match self.before {
            Before::Object => {}
            Before::Absent => changes.add(&self.at, value),
            Before::Other => changes.replace(&self.at, value),
        }
    }
}

/// The list at `map[key]` before items are appended to it (possibly in several steps), so
/// that the appends are written down once they are all made.
pub(super) struct Appends {
    key: &'static str,
    /// The key was present (as anything).
    existed: bool,
    /// Its length, if it was a list.
    len: Option<usize>,
}

impl Appends {
    pub(super) fn note(map: &Map<String, Value>, key: &'static str) -> Appends {
        Appends {
            key,
            existed: map.contains_key(key),
            len: map.get(key).and_then(Value::as_array).map(Vec::len),
        }
    }

    /// One `add` per appended item of a list the pod had; the whole list if it is new.
    pub(super) fn record(self, map: &Map<String, Value>, at: &At, changes: &mut Changes) {
        let Some(now) = map.get(self.key) else {
            return;
        };
        let list_at = child(at, self.key);
        match (self.len, now) {
            (Some(len), Value::Array(items)) => {
                for (index, item) in items.iter().enumerate().skip(len) {
                    changes.add(&child(&list_at, index), item);
                }
            }
            // Unchanged: a non-list is only replaced when something is appended.
            (Some(_), _) => {}
            (None, Value::Array(_)) if self.existed => changes.replace(&list_at, now),
            (None, Value::Array(_)) => changes.add(&list_at, now),
            (None, _) => {}
        }
    }
}
