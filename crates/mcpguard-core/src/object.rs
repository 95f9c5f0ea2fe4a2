//! An admission request's `object` or `oldObject`, parsed for the engine.
//!
//! kube-apiserver sends `metadata.managedFields` with every object: for a typical pod, a
//! third of the review and hundreds of small JSON objects (one per field its manager set).
//! The checks never read them, and building them as a `serde_json::Value` (then dropping
//! it) was the largest single cost of a review. They are kept aside as raw JSON text
//! instead, and put back only where something may read them: a CEL rule that names them
//! (`CompiledRules::reads_managed_fields`), and serialisation.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

const METADATA: &str = "metadata";
const MANAGED_FIELDS: &str = "managedFields";

/// The object as a `Value`, without `metadata.managedFields` when they came as raw JSON.
/// Derefs to that `Value`; [`KubeObject::full`] is the object as sent.
#[derive(Clone, Debug)]
pub struct KubeObject {
    value: Value,
    /// `metadata.managedFields` as sent, taken out of `value`.
    managed_fields: Option<Box<RawValue>>,
}

impl KubeObject {
    /// The object as sent, managedFields included (a copy, when they were kept aside).
    pub fn full(&self) -> Cow<'_, Value> {
        let Some(raw) = &self.managed_fields else {
            return Cow::Borrowed(&self.value);
        };
        let mut full = self.value.clone();
        // The text was parsed once already, as JSON; it parses again.
        let managed: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
        if let Some(metadata) = full.get_mut(METADATA).and_then(Value::as_object_mut) {
            metadata.insert(MANAGED_FIELDS.to_owned(), managed);
        }
        Cow::Owned(full)
    }

    /// The object as sent when `whole`, else without the managedFields kept aside.
    pub fn with_managed_fields_if(&self, whole: bool) -> Cow<'_, Value> {
        if whole {
            self.full()
        } else {
            Cow::Borrowed(&self.value)
        }
    }
}

impl Deref for KubeObject {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

/// An object built in code: kept whole, managedFields and all.
impl From<Value> for KubeObject {
    fn from(value: Value) -> Self {
        KubeObject {
            value,
            managed_fields: None,
        }
    }
}

impl Serialize for KubeObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.full().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KubeObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut managed_fields = None;
        let value = deserializer.deserialize_any(Partial {
            level: Level::Object,
            managed_fields: &mut managed_fields,
        })?;
        Ok(KubeObject {
            value,
            managed_fields,
        })
    }
}

/// Where [`Partial`] is in the object.
#[derive(Clone, Copy)]
enum Level {
    Object,
    Metadata,
}

/// A `Value` like serde_json's own, except that at `metadata.managedFields` of the object
/// the JSON text is kept (not built), in `managed_fields`.
struct Partial<'a> {
    level: Level,
    managed_fields: &'a mut Option<Box<RawValue>>,
}

impl<'de> DeserializeSeed<'de> for Partial<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Partial<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match (self.level, key.as_str()) {
                (Level::Object, METADATA) => {
                    // A repeated key replaces the earlier one, as in a `Value`.
                    *self.managed_fields = None;
                    map.next_value_seed(Partial {
                        level: Level::Metadata,
                        managed_fields: &mut *self.managed_fields,
                    })?
                }
                (Level::Metadata, MANAGED_FIELDS) => {
                    // Scanned to its end, not built; a repeated key replaces it.
                    *self.managed_fields = Some(map.next_value()?);
                    continue;
                }
                _ => map.next_value()?,
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod_text() -> String {
        json!({
            "kind": "Pod",
            "metadata": {
                "name": "p",
                "labels": {"app": "x"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {".": {}}}}]
            },
            "spec": {"template": {"metadata": {"managedFields": [1]}}, "containers": []}
        })
        .to_string()
    }

    #[test]
    fn managed_fields_are_kept_aside_and_put_back_whole() {
        let text = pod_text();
        let object: KubeObject = serde_json::from_str(&text).expect("parses");
        let as_value: Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(object.pointer("/metadata/managedFields"), None);
        assert_eq!(object["metadata"]["labels"], json!({"app": "x"}));
        // Only the object's own metadata: a nested one is not the object's.
        assert_eq!(
            object.pointer("/spec/template/metadata/managedFields"),
            Some(&json!([1]))
        );
        assert_eq!(*object.full(), as_value);
        assert_eq!(*object.with_managed_fields_if(true), as_value);
        assert_ne!(*object.with_managed_fields_if(false), as_value);
        assert_eq!(serde_json::to_value(&object).expect("serialises"), as_value);
    }

    #[test]
    fn from_a_value_it_parses_the_same() {
        let as_value: Value = serde_json::from_str(&pod_text()).expect("parses");
        let object: KubeObject = serde_json::from_value(as_value.clone()).expect("parses");
        assert_eq!(object.pointer("/metadata/managedFields"), None);
        assert_eq!(*object.full(), as_value);
    }

    #[test]
    fn anything_else_parses_as_a_value_would() {
        for text in [
            r#"[1, -2, 2.5, "a", true, null, {"metadata": {"managedFields": 1}}]"#,
            r#""text""#,
            "null",
            r#"{"metadata": "not a map"}"#,
            r#"{"metadata": {"managedFields": null, "name": "n"}}"#,
            r#"{"metadata": {"managedFields": [1]}, "metadata": {"name": "second"}}"#,
            r#"{"metadata": {"managedFields": [1], "managedFields": [2]}}"#,
        ] {
            let object: KubeObject = serde_json::from_str(text).expect("parses");
            let as_value: Value = serde_json::from_str(text).expect("parses");
            assert_eq!(*object.full(), as_value, "{text}");
        }
    }

    #[test]
    fn an_object_built_in_code_is_kept_whole() {
        let value: Value = serde_json::from_str(&pod_text()).expect("parses");
        let object = KubeObject::from(value.clone());
        assert_eq!(*object, value);
        assert!(matches!(object.full(), Cow::Borrowed(_)));
    }
}
