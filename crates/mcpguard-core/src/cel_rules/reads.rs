//! What the expressions read of `object` and `oldObject`, and converting only that into CEL
//! values: the checker records each read ([`Access::record`]), the evaluation converts what
//! was recorded ([`to_cel_reading`]), once per review for all rules.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube_cel::cel;
use serde_json::Value as Json;

/// What the expressions read of `object` and `oldObject`.
#[derive(Debug, Default)]
pub(super) struct Reads {
    pub(super) object: Access,
    pub(super) old_object: Access,
}

/// What is read of a value: nothing, some of its fields, each of its elements in some way,
/// or all of it. Every use of a value other than selecting a field of it or ranging over it
/// (comparing it, indexing it, passing it to a function, `in`, using a comprehension's
/// variable bare) reads all of it; a field selection reads only that field; ranging over a
/// list reads its elements as the comprehension's body reads its variable. So a value
/// converted with only what is read evaluates exactly as the whole one would.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum Access {
    #[default]
    Nothing,
    Fields(BTreeMap<String, Access>),
    Each(Box<Access>),
    Whole,
}

impl Access {
    /// Whether anything at `path` (or below it) is read.
    pub(super) fn reaches(&self, path: &[&str]) -> bool {
        match (self, path) {
            (Access::Nothing, _) => false,
            (Access::Whole, _) | (_, []) => true,
            (Access::Fields(fields), [first, rest @ ..]) => fields
                .get(*first)
                .is_some_and(|access| access.reaches(rest)),
            // Ranging over a map reads its values too.
            (Access::Each(_), _) => true,
        }
    }

    /// Records a read at `steps`: all of the value there, or (`whole` false) only its presence.
    pub(super) fn record(&mut self, steps: &[Step<'_>], whole: bool) {
        match (&mut *self, steps) {
            (Access::Whole, _) => {}
            (_, []) => {
                if whole {
                    *self = Access::Whole;
                }
            }
            (Access::Nothing, [Step::Field(_), ..]) => {
                *self = Access::Fields(Default::default());
                self.record(steps, whole);
            }
            (Access::Nothing, [Step::Each, ..]) => {
                *self = Access::Each(Box::default());
                self.record(steps, whole);
            }
            (Access::Fields(fields), [Step::Field(field), rest @ ..]) => fields
                .entry((*field).to_owned())
                .or_default()
                .record(rest, whole),
            (Access::Each(element), [Step::Each, rest @ ..]) => element.record(rest, whole),
            // Read both as a map and as a list: keep it whole.
            (Access::Fields(_), [Step::Each, ..]) | (Access::Each(_), [Step::Field(_), ..]) => {
                *self = Access::Whole
            }
        }
    }
}

/// The part of `value` that `access` reads, as a CEL value (`null` for what is not read).
pub(super) fn to_cel_reading(value: &Json, access: &Access) -> cel::Value {
    use cel::objects::{Key, Map};
    match (access, value) {
        (Access::Nothing, _) => cel::Value::Null,
        (Access::Fields(fields), Json::Object(map)) => cel::Value::Map(Map {
            map: Arc::new(
                fields
                    .iter()
                    .filter_map(|(field, access)| {
                        let value = map.get(field)?;
                        Some((
                            Key::String(Arc::new(field.clone())),
                            to_cel_reading(value, access),
                        ))
                    })
                    .collect(),
            ),
        }),
        (Access::Each(element), Json::Array(items)) => cel::Value::List(Arc::new(
            items.iter().map(|i| to_cel_reading(i, element)).collect(),
        )),
        // Whole; fields of something that is not a map (which fail or read nothing either
        // way); ranging over a map (which reads its keys, and its values by index).
        (Access::Fields(_) | Access::Each(_) | Access::Whole, value) => to_cel(value),
    }
}

/// JSON as CEL values: integers as `int` (`uint` only above i64), other numbers as `double`.
pub(super) fn to_cel(value: &Json) -> cel::Value {
    use cel::objects::{Key, Map};
    match value {
        Json::Null => cel::Value::Null,
        Json::Bool(b) => cel::Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            (None, None) => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => cel::Value::String(Arc::new(s.clone())),
        Json::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Json::Object(map) => cel::Value::Map(Map {
            map: Arc::new(
                map.iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                    .collect(),
            ),
        }),
    }
}

/// A step from a variable to what an expression reads: a field, or every element of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step<'p> {
    Field(&'p str),
    Each,
}

#[cfg(test)]
mod tests;
