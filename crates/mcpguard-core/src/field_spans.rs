//! Where the fields of a YAML document are: the document read a second time into a tree of
//! the lines and columns of its keys and items, so that a finding's field path
//! (`spec.template.spec.containers[1].securityContext.privileged`) can be shown at its line.
//!
//! The tree is as deep as the document, which the YAML parser's budget bounds (64 levels,
//! 250 000 nodes by default); resolving a path walks it without recursion.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A node of a YAML document: a mapping's keys with where each is written, a sequence's
/// items with where each starts, or a scalar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanNode {
    Map(Vec<(String, Position, SpanNode)>),
    Seq(Vec<(Position, SpanNode)>),
    Scalar,
}

/// An object's tree and where the object starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSpans {
    pub start: Position,
    pub root: SpanNode,
}

/// The position of `path`, or of its deepest ancestor written in the document when the rest
/// is missing (a field that fails by being unset). The object's start when not even the first
/// step of the path is written; `None` for a path that cannot be read.
pub fn locate(spans: &ObjectSpans, path: &str) -> Option<Position> {
    let mut node = &spans.root;
    let mut found = spans.start;
    for step in steps(path)? {
        let next = match (step, node) {
            (Step::Key(key), SpanNode::Map(entries)) => entries
                .iter()
                .find(|(name, _, _)| name == key)
                .map(|(_, position, value)| (*position, value)),
            (Step::Index(index), SpanNode::Seq(items)) => {
                items.get(index).map(|(position, item)| (*position, item))
            }
            _ => None,
        };
        let Some((position, child)) = next else {
            break;
        };
        found = position;
        node = child;
    }
    Some(found)
}

#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[1][2].c` as its steps; `None` when an index is not a number or a bracket is open.
fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut indices) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        out.push(Step::Key(key));
        while let Some(rest) = indices.strip_prefix('[') {
            let (number, tail) = rest.split_once(']')?;
            out.push(Step::Index(number.parse().ok()?));
            indices = tail;
        }
        if !indices.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// The tree of one YAML document (`text`, which starts at `first_line` of the file, 0-based,
/// and at `first_column` of that line, for a `--- {kind: Pod}` document), read with the
/// parser `options` the document's objects were read with: positions are the file's. `None`
/// when the document does not parse.
pub fn document_spans(
    text: &str,
    first_line: usize,
    first_column: usize,
    options: serde_saphyr::Options,
) -> Option<ObjectSpans> {
    let document: Spanned<SpanNode> = serde_saphyr::from_str_with_options(text, options).ok()?;
    let shift = Shift {
        lines: first_line,
        first_column,
    };
    let mut root = document.value;
    shift.apply(&mut root);
    Some(ObjectSpans {
        start: shift.position(raw_position(&document.referenced)),
        root,
    })
}

/// The items of a `kind: List` document, each an object of its own as
/// `documents::split_each` flattens them; empty when the document has no `items` sequence.
pub(crate) fn list_items(document: ObjectSpans) -> Vec<ObjectSpans> {
    let SpanNode::Map(entries) = document.root else {
        return Vec::new();
    };
    entries
        .into_iter()
        .find_map(|(key, _, value)| match value {
            SpanNode::Seq(items) if key == "items" => Some(items),
            _ => None,
        })
        .into_iter()
        .flatten()
        .map(|(start, root)| ObjectSpans { start, root })
        .collect()
}

/// Positions relative to a document made the file's: later lines move down by the lines
/// before the document; its first line also moves right when the document starts mid-line.
#[derive(Clone, Copy)]
struct Shift {
    lines: usize,
    first_column: usize,
}

impl Shift {
    fn position(self, (line, column): (usize, usize)) -> Position {
        Position {
            line: line + self.lines,
            column: if line == 1 {
                column + self.first_column
            } else {
                column
            },
        }
    }

    /// Shifts every position of the tree, with an explicit stack rather than recursion.
    fn apply(self, root: &mut SpanNode) {
        let mut pending = vec![root];
        while let Some(node) = pending.pop() {
            match node {
                SpanNode::Map(entries) => {
                    for (_, position, value) in entries {
                        *position = self.position((position.line, position.column));
                        pending.push(value);
                    }
                }
                SpanNode::Seq(items) => {
                    for (position, item) in items {
                        *position = self.position((position.line, position.column));
                        pending.push(item);
                    }
                }
                SpanNode::Scalar => {}
            }
        }
    }
}

fn raw_position(location: &serde_saphyr::Location) -> (usize, usize) {
    let line = usize::try_from(location.line()).unwrap_or(0);
    let column = usize::try_from(location.column()).unwrap_or(0);
    (line, column)
}

impl<'de> Deserialize<'de> for SpanNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = SpanNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_unit<E: de::Error>(self) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_none<E: de::Error>(self) -> Result<SpanNode, E> {
        Ok(SpanNode::Scalar)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<SpanNode, D::Error> {
        SpanNode::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<SpanNode, D::Error> {
        SpanNode::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpanNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<SpanNode>>()? {
            let (line, column) = raw_position(&item.referenced);
            items.push((Position { line, column }, item.value));
        }
        Ok(SpanNode::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpanNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<SpanNode>()?;
            let (line, column) = raw_position(&key.referenced);
            entries.push((key.value.0, Position { line, column }, value));
        }
        Ok(SpanNode::Map(entries))
    }
}

/// A mapping key as text: scalars as written (`80`, `true`), anything else (a key that is
/// itself a mapping, which no Kubernetes field is) as an empty name no path reaches.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(Key(key.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, key: bool) -> Result<Key, E> {
        Ok(Key(key.to_string()))
    }

    fn visit_i64<E: de::Error>(self, key: i64) -> Result<Key, E> {
        Ok(Key(key.to_string()))
    }

    fn visit_u64<E: de::Error>(self, key: u64) -> Result<Key, E> {
        Ok(Key(key.to_string()))
    }

    fn visit_f64<E: de::Error>(self, key: f64) -> Result<Key, E> {
        Ok(Key(key.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key(String::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key(String::new()))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        Key::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        Key::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Key(String::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Key(String::new()))
    }
}

#[cfg(test)]
mod tests {
    use serde_saphyr::Options;

    use super::*;

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: ok
          image: a
        - name: bad
          image: b
          securityContext:
            privileged: true
";

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn a_field_is_found_at_its_key() {
        let spans = document_spans(DEPLOYMENT, 0, 0, Options::default()).expect("parses");
        assert_eq!(spans.start, Position { line: 1, column: 1 });
        assert_eq!(
            locate(
                &spans,
                "spec.template.spec.containers[1].securityContext.privileged"
            ),
            at(14, 13)
        );
        assert_eq!(
            locate(&spans, "spec.template.spec.containers[1]"),
            at(11, 11)
        );
        assert_eq!(locate(&spans, "metadata.name"), at(4, 3));
    }

    #[test]
    fn a_missing_field_is_found_at_its_deepest_written_ancestor() {
        let spans = document_spans(DEPLOYMENT, 0, 0, Options::default()).expect("parses");
        assert_eq!(
            locate(
                &spans,
                "spec.template.spec.containers[0].securityContext.runAsNonRoot"
            ),
            at(9, 11)
        );
        assert_eq!(
            locate(&spans, "spec.template.spec.containers[7].image"),
            at(8, 7)
        );
        assert_eq!(locate(&spans, "status.phase"), at(1, 1));
        assert_eq!(locate(&spans, "spec.template[x]"), None);
    }

    #[test]
    fn positions_are_the_files_after_the_lines_before_the_document() {
        let spans = document_spans(
            "kind: Pod\nspec:\n  hostNetwork: true\n",
            10,
            0,
            Options::default(),
        )
        .expect("parses");
        assert_eq!(locate(&spans, "spec.hostNetwork"), at(13, 3));
        // `--- {kind: Pod, spec: {hostPID: true}}`: the document starts at column 5.
        let spans = document_spans(
            "{kind: Pod, spec: {hostPID: true}}\n",
            4,
            4,
            Options::default(),
        )
        .expect("parses");
        assert_eq!(locate(&spans, "spec.hostPID"), at(5, 24));
    }

    #[test]
    fn the_items_of_a_list_are_objects_of_their_own() {
        let list = "kind: List\nitems:\n- kind: Pod\n  spec: {hostIPC: true}\n- kind: Pod\n";
        let objects = list_items(document_spans(list, 0, 0, Options::default()).expect("parses"));
        assert_eq!(objects.len(), 2);
        assert_eq!(locate(&objects[0], "spec.hostIPC"), at(4, 10));
        assert_eq!(objects[1].start, Position { line: 5, column: 3 });
    }

    #[test]
    fn odd_keys_and_paths_do_not_fail() {
        let spans = document_spans(
            "? [a, b]\n: 1\n80: x\ntrue: y\n~: z\n",
            0,
            0,
            Options::default(),
        )
        .expect("parses");
        assert_eq!(locate(&spans, "80"), at(3, 1));
        assert_eq!(locate(&spans, "true"), at(4, 1));
        assert_eq!(steps("a[1]b"), None);
        assert_eq!(steps("a[1"), None);
        assert_eq!(
            steps("a.b[1][2]"),
            Some(vec![
                Step::Key("a"),
                Step::Key("b"),
                Step::Index(1),
                Step::Index(2)
            ])
        );
    }

    #[test]
    fn a_deeply_nested_document_is_refused_by_the_parser_budget_not_the_stack() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(document_spans(&deep, 0, 0, Options::default()), None);
    }
}
