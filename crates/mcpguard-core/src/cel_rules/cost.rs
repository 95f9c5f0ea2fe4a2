//! The cost model: the [`Estimator`] bounds a rule's work on one object before it runs, from
//! the program, the actual input and each function's kind (`functions`).

use std::collections::HashMap;

use kube_cel::cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue,
};
use serde_json::Value as Json;

use super::VARIABLES;
use super::functions::{
    Kind, RangeArgument, function_kind, is_operator, qualified_name, range_argument,
};

/// Upper bounds on one value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bound {
    /// Elements of a list, entries of a map, bytes of a string; 0 for other scalars.
    len: u64,
    /// The largest `len` of anything nested inside, at any depth.
    inner: u64,
    /// Values at all depths: a scalar is 1, a list 1 + its elements', a map 1 + its keys' and
    /// values'.
    vol: u64,
}

const SCALAR: Bound = Bound {
    len: 0,
    inner: 0,
    vol: 1,
};

impl Bound {
    /// What processing the value touches: its values plus its own length.
    fn weight(self) -> u64 {
        self.vol.saturating_add(self.len)
    }

    fn join(self, other: Bound) -> Bound {
        Bound {
            len: self.len.max(other.len),
            inner: self.inner.max(other.inner),
            vol: self.vol.max(other.vol),
        }
    }

    /// Anything inside this value: an element, a field, a key.
    fn part(self) -> Bound {
        Bound {
            len: self.inner,
            inner: self.inner,
            vol: self.vol,
        }
    }

    /// This value or anything inside it.
    fn within(self) -> Bound {
        self.join(self.part())
    }
}

/// What an expression may evaluate to: one of some nodes of the input (exact sizes), or a
/// value it builds (bounded).
#[derive(Clone, Debug)]
enum Abs<'j> {
    Nodes(Vec<&'j Json>),
    Built(Bound),
}

/// The cost model. The cel crate has no cost tracking and the decision reads no clock, so
/// before a rule runs its work is bounded from the program and the actual input; above
/// `costLimit` the rule is not run (a violation says so). The bound is deterministic: the
/// same policy and object always give the same figure.
///
/// Unit: one evaluation of one expression node, plus one per value or byte it converts,
/// copies or scans. A value's size is the number of values in it at all depths plus its own
/// length (a string's bytes, a list's elements, a map's entries). The walk follows the
/// interpreter:
///
/// - a literal or variable costs 1; a field selection 1 + the size of the selected value (the
///   interpreter copies it); a list or map literal 1 + the size of what it builds;
/// - a function or operator costs 1 + the sizes of its inputs and its result (each is converted
///   or scanned once), plus for `in`/`indexOf` the list's length times the needle's size, for
///   regular expressions the text's length times the pattern's, for `sort`/`distinct` the
///   square of the list's size, and for `sets.*` the product of the two lists' sizes;
/// - `a ? b : c`, `&&`, `||` count every branch (short-circuits only lower the real work);
/// - a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) costs its range and
///   initial value once, then, for each element of the range, its condition and step plus a
///   copy of the element and of the accumulator, then its result. Its element count is taken
///   from the real input: the iteration variable of `object.spec.containers.all(c, ...)` is
///   bound to the actual containers, so `c.env.exists(e, ...)` costs the longest actual `env`
///   list, and nested comprehensions multiply actual lengths. An accumulator that grows
///   (`map`, `filter`) is bounded by its initial value plus one step's growth per element.
///
/// Sizes come from the input wherever an expression reads it (`object.metadata.labels` is the
/// actual labels map); a value the expression builds carries bounds instead: a list literal
/// has as many elements as it lists, `a + b` the sum, `split` at most one more than its text's
/// length, `replace` at most (len + 1) × (replacement's len + 1), `lists.range(n)` `n` (a literal
/// or a `size()`, enforced at load), and a function that only selects or reshapes (`first`,
/// `lowerAscii`, `orValue`, ...) no more than its largest input. Everything saturates at
/// `u64::MAX`, which is always over the limit.
///
/// Not counted: converting the input into CEL values, once per review for all rules and only
/// the parts the rules read (see [`Access`](super::reads::Access)), which is linear in the
/// request and bounded by the API server's request size limit.
pub(super) struct Estimator<'j> {
    roots: [(&'static str, &'j Json); 4],
    memo: HashMap<*const Json, Bound>,
}

/// A variable in scope during the walk.
type Scope<'p, 'j> = Vec<(&'p str, Abs<'j>)>;

impl<'j> Estimator<'j> {
    pub(super) fn new(roots: [(&'static str, &'j Json); 4]) -> Self {
        Estimator {
            roots,
            memo: HashMap::new(),
        }
    }

    pub(super) fn estimate(&mut self, expr: &IdedExpr) -> u64 {
        self.walk(expr, &mut Vec::new()).1
    }

    /// Exact bounds of an input node (memoised: the same node is asked about repeatedly).
    fn node(&mut self, node: &'j Json) -> Bound {
        if let Some(bound) = self.memo.get(&(node as *const Json)) {
            return *bound;
        }
        let bound = measure(node);
        self.memo.insert(node as *const Json, bound);
        bound
    }

    fn bound(&mut self, abs: &Abs<'j>) -> Bound {
        match abs {
            Abs::Built(bound) => *bound,
            Abs::Nodes(nodes) => nodes
                .iter()
                .fold(Bound::default(), |acc, n| acc.join(self.node(n))),
        }
    }

    fn join(&mut self, a: Abs<'j>, b: Abs<'j>) -> Abs<'j> {
        match (a, b) {
            (Abs::Nodes(mut a), Abs::Nodes(b)) => {
                a.extend(b);
                Abs::Nodes(a)
            }
            (a, b) => {
                let joined = self.bound(&a).join(self.bound(&b));
                Abs::Built(joined)
            }
        }
    }

    fn select(&mut self, abs: &Abs<'j>, field: &str) -> Abs<'j> {
        match abs {
            Abs::Nodes(nodes) => Abs::Nodes(nodes.iter().filter_map(|n| n.get(field)).collect()),
            Abs::Built(bound) => Abs::Built(bound.part()),
        }
    }

    /// `container[key]`: the key's node when the key is a literal, else any element or value.
    fn index(&mut self, abs: &Abs<'j>, key: &IdedExpr) -> Abs<'j> {
        let Abs::Nodes(nodes) = abs else {
            return Abs::Built(self.bound(abs).part());
        };
        match &key.expr {
            Expr::Literal(LiteralValue::String(s)) => self.select(abs, s.inner()),
            Expr::Literal(LiteralValue::Int(i)) => {
                let i = usize::try_from(*i.inner()).unwrap_or(usize::MAX);
                Abs::Nodes(nodes.iter().filter_map(|n| n.get(i)).collect())
            }
            _ => Abs::Nodes(
                nodes
                    .iter()
                    .flat_map(|n| -> Box<dyn Iterator<Item = &'j Json>> {
                        match n {
                            Json::Array(items) => Box::new(items.iter()),
                            Json::Object(map) => Box::new(map.values()),
                            _ => Box::new(std::iter::empty()),
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// What a comprehension's variable is bound to: list elements, or map keys.
    fn elements(&mut self, abs: &Abs<'j>) -> Abs<'j> {
        let Abs::Nodes(nodes) = abs else {
            return Abs::Built(self.bound(abs).part());
        };
        let mut items = Vec::new();
        let mut keys: Option<Bound> = None;
        for node in nodes {
            match node {
                Json::Array(elements) => items.extend(elements.iter()),
                Json::Object(map) => {
                    for key in map.keys() {
                        let key = Bound {
                            len: key.len() as u64,
                            inner: 0,
                            vol: 1,
                        };
                        keys = Some(keys.map_or(key, |k| k.join(key)));
                    }
                }
                _ => {}
            }
        }
        match keys {
            None => Abs::Nodes(items),
            Some(keys) => self.join(Abs::Nodes(items), Abs::Built(keys)),
        }
    }

    fn lookup(&self, name: &str, scope: &Scope<'_, 'j>) -> Abs<'j> {
        if let Some((_, abs)) = scope.iter().rev().find(|(n, _)| *n == name) {
            return abs.clone();
        }
        match self.roots.iter().find(|(n, _)| *n == name) {
            Some((_, node)) => Abs::Nodes(vec![*node]),
            None => Abs::Built(SCALAR),
        }
    }

    /// The abstract value of `expr` and the cost bound of evaluating it once.
    fn walk<'p>(&mut self, expr: &'p IdedExpr, scope: &mut Scope<'p, 'j>) -> (Abs<'j>, u64) {
        match &expr.expr {
            Expr::Literal(literal) => {
                let len = match literal {
                    LiteralValue::String(s) => s.inner().len() as u64,
                    LiteralValue::Bytes(b) => b.inner().len() as u64,
                    _ => 0,
                };
                (
                    Abs::Built(Bound {
                        len,
                        inner: 0,
                        vol: 1,
                    }),
                    1,
                )
            }
            Expr::Ident(name) => (self.lookup(name, scope), 1),
            Expr::Select(select) => {
                let (operand, cost) = self.walk(&select.operand, scope);
                if select.test {
                    return (Abs::Built(SCALAR), cost.saturating_add(1));
                }
                let value = self.select(&operand, &select.field);
                let size = self.bound(&value).weight();
                (value, cost.saturating_add(1).saturating_add(size))
            }
            Expr::List(list) => {
                let mut cost = 1u64;
                let mut bound = Bound {
                    len: list.elements.len() as u64,
                    inner: 0,
                    vol: 1,
                };
                for element in &list.elements {
                    let (abs, c) = self.walk(element, scope);
                    let b = self.bound(&abs);
                    cost = cost.saturating_add(c);
                    bound.inner = bound.inner.max(b.len).max(b.inner);
                    bound.vol = bound.vol.saturating_add(b.vol);
                }
                (Abs::Built(bound), cost.saturating_add(bound.weight()))
            }
            Expr::Map(map) => {
                let mut cost = 1u64;
                let mut bound = Bound {
                    len: map.entries.len() as u64,
                    inner: 0,
                    vol: 1,
                };
                for entry in &map.entries {
                    let EntryExpr::MapEntry(entry) = &entry.expr else {
                        continue;
                    };
                    for part in [&entry.key, &entry.value] {
                        let (abs, c) = self.walk(part, scope);
                        let b = self.bound(&abs);
                        cost = cost.saturating_add(c);
                        bound.inner = bound.inner.max(b.len).max(b.inner);
                        bound.vol = bound.vol.saturating_add(b.vol);
                    }
                }
                (Abs::Built(bound), cost.saturating_add(bound.weight()))
            }
            Expr::Comprehension(comprehension) => self.comprehension(comprehension, scope),
            Expr::Call(call) => self.call(call, scope),
            // Refused at load.
            Expr::Struct(_) | Expr::Unspecified => (Abs::Built(SCALAR), u64::MAX),
        }
    }

    fn comprehension<'p>(
        &mut self,
        comprehension: &'p ComprehensionExpr,
        scope: &mut Scope<'p, 'j>,
    ) -> (Abs<'j>, u64) {
        let (range, range_cost) = self.walk(&comprehension.iter_range, scope);
        let (init, init_cost) = self.walk(&comprehension.accu_init, scope);
        let count = self.bound(&range).len;
        let element = self.elements(&range);
        let element_size = self.bound(&element).weight();
        let init_bound = self.bound(&init);
        let bind = |scope: &mut Scope<'p, 'j>, accu: Abs<'j>| {
            scope.push((comprehension.iter_var.as_str(), element.clone()));
            scope.push((comprehension.accu_var.as_str(), accu));
            if let Some(var2) = &comprehension.iter_var2 {
                scope.push((var2.as_str(), element.clone()));
            }
        };
        let pushed = 2 + usize::from(comprehension.iter_var2.is_some());
        // One step's growth: the step with an empty accumulator, then with a large one: if the
        // result follows the accumulator, it appends to it (`map`, `filter`).
        bind(scope, Abs::Built(Bound::default()));
        let (grown, _) = self.walk(&comprehension.loop_step, scope);
        let step = self.bound(&grown);
        scope.truncate(scope.len() - pushed);
        let accumulates = comprehension_appends(comprehension);
        let accu = if accumulates {
            Bound {
                len: init_bound
                    .len
                    .saturating_add(count.saturating_mul(step.len)),
                inner: init_bound.inner.max(step.inner),
                vol: init_bound
                    .vol
                    .saturating_add(count.saturating_mul(step.vol)),
            }
        } else {
            init_bound.join(step)
        };
        bind(scope, Abs::Built(accu));
        let (_, cond_cost) = self.walk(&comprehension.loop_cond, scope);
        let (_, step_cost) = self.walk(&comprehension.loop_step, scope);
        let (result, result_cost) = self.walk(&comprehension.result, scope);
        scope.truncate(scope.len() - pushed);
        let per_element = cond_cost
            .saturating_add(step_cost)
            .saturating_add(element_size)
            .saturating_add(accu.weight());
        let cost = range_cost
            .saturating_add(init_cost)
            .saturating_add(count.saturating_mul(per_element))
            .saturating_add(result_cost);
        (result, cost)
    }

    fn call<'p>(&mut self, call: &'p CallExpr, scope: &mut Scope<'p, 'j>) -> (Abs<'j>, u64) {
        let name = qualified_name(call, |n| {
            scope.iter().any(|(s, _)| *s == n) || VARIABLES.contains(&n)
        });
        let qualified = name != call.func_name;
        let mut cost = 1u64;
        let mut inputs: Vec<Abs<'j>> = Vec::with_capacity(call.args.len() + 1);
        if let Some(target) = &call.target
            && !qualified
        {
            let (abs, c) = self.walk(target, scope);
            cost = cost.saturating_add(c);
            inputs.push(abs);
        }
        for arg in &call.args {
            let (abs, c) = self.walk(arg, scope);
            cost = cost.saturating_add(c);
            inputs.push(abs);
        }
        let bounds: Vec<Bound> = inputs.iter().map(|a| self.bound(a)).collect();
        let first = bounds.first().copied().unwrap_or_default();
        let second = bounds.get(1).copied().unwrap_or_default();
        let mut extra = 0u64;
        let result = match name.as_str() {
            "_[_]" | "_[?_]" => match (inputs.first(), call.args.get(1)) {
                (Some(container), Some(key)) => self.index(container, key),
                _ => Abs::Built(SCALAR),
            },
            "_?_:_" => match (inputs.get(1), inputs.get(2)) {
                (Some(a), Some(b)) => self.join(a.clone(), b.clone()),
                _ => Abs::Built(SCALAR),
            },
            "_+_" => Abs::Built(Bound {
                len: first.len.saturating_add(second.len),
                inner: first.inner.max(second.inner),
                vol: first.vol.saturating_add(second.vol),
            }),
            "@in" => {
                extra = second.len.saturating_mul(first.weight());
                Abs::Built(SCALAR)
            }
            "indexOf" | "lastIndexOf" => {
                extra = first.len.saturating_mul(second.weight());
                Abs::Built(SCALAR)
            }
            "matches" | "find" | "findAll" => {
                extra = (first.len.saturating_add(1)).saturating_mul(second.len.saturating_add(1));
                match name.as_str() {
                    "matches" => Abs::Built(SCALAR),
                    "find" => Abs::Built(first),
                    _ => Abs::Built(pieces(first)),
                }
            }
            "sort" | "distinct" => {
                extra = first.weight().saturating_mul(first.weight());
                Abs::Built(first)
            }
            "sets.contains" | "sets.equivalent" | "sets.intersects" => {
                extra = first.weight().saturating_mul(second.weight());
                Abs::Built(SCALAR)
            }
            "string" => Abs::Built(Bound {
                len: first.len.saturating_add(first.vol.saturating_mul(40)),
                inner: 0,
                vol: 1,
            }),
            "strings.quote" => Abs::Built(text(first.len.saturating_mul(6).saturating_add(2))),
            "jsonpatch.escapeKey" => Abs::Built(text(first.len.saturating_mul(2))),
            "base64.encode" => Abs::Built(text(first.len.saturating_mul(2).saturating_add(4))),
            "replace" => {
                let replacement = bounds.get(2).copied().unwrap_or_default();
                Abs::Built(text(
                    (first.len.saturating_add(1)).saturating_mul(replacement.len.saturating_add(1)),
                ))
            }
            "split" => Abs::Built(pieces(first)),
            "join" => Abs::Built(text(
                first
                    .len
                    .saturating_mul(first.inner.saturating_add(second.len)),
            )),
            "format" => {
                let widest = second.len.max(second.inner).saturating_add(40);
                Abs::Built(text(
                    first.len.saturating_add(second.vol.saturating_mul(widest)),
                ))
            }
            "flatten" => Abs::Built(Bound {
                len: first.vol,
                inner: first.inner,
                vol: first.vol,
            }),
            "lists.range" => {
                let n = match range_argument(call) {
                    Some(RangeArgument::Literal(n)) => n,
                    Some(RangeArgument::SizeOf(measured)) => {
                        // Already counted as the argument; walked again only for its length.
                        let (abs, _) = self.walk(measured, scope);
                        self.bound(&abs).len
                    }
                    None => u64::MAX,
                };
                Abs::Built(Bound {
                    len: n,
                    inner: 0,
                    vol: n.saturating_add(1),
                })
            }
            "getQuery" => Abs::Built(Bound {
                len: first.len,
                inner: first.len,
                vol: first.len.saturating_mul(2).saturating_add(1),
            }),
            "validate" => Abs::Built(Bound {
                len: 16,
                inner: second.len.saturating_add(256),
                vol: 33,
            }),
            "add" | "sub" => {
                let joined = bounds.iter().fold(Bound::default(), |a, b| a.join(*b));
                Abs::Built(text(joined.len.saturating_add(40)))
            }
            other if is_operator(other) => Abs::Built(SCALAR),
            other => match function_kind(other) {
                Some(Kind::Within) => {
                    let joined = bounds.iter().fold(Bound::default(), |a, b| a.join(*b));
                    Abs::Built(joined.within())
                }
                Some(Kind::Scalar) => Abs::Built(SCALAR),
                // Every growing function has its own arm above; unknown ones are refused at load.
                Some(Kind::Grows) | None => Abs::Built(Bound {
                    len: u64::MAX,
                    inner: u64::MAX,
                    vol: u64::MAX,
                }),
            },
        };
        let result_size = self.bound(&result).weight();
        let inputs_size = bounds
            .iter()
            .fold(0u64, |acc, b| acc.saturating_add(b.weight()));
        let cost = cost
            .saturating_add(inputs_size)
            .saturating_add(result_size)
            .saturating_add(extra);
        (result, cost)
    }
}

/// Whether a comprehension's step appends to its accumulator (`map`, `filter`): it contains
/// `accumulator + [...]` (`exists_one` counts with `accumulator + 1`, which does not grow).
fn comprehension_appends(comprehension: &ComprehensionExpr) -> bool {
    fn appends(expr: &IdedExpr, accu: &str) -> bool {
        match &expr.expr {
            Expr::Call(call) => {
                let direct = call.func_name == "_+_"
                    && matches!(call.args.as_slice(), [a, b]
                        if matches!(&a.expr, Expr::Ident(n) if n == accu)
                            && matches!(&b.expr, Expr::List(_)));
                direct
                    || call.args.iter().any(|a| appends(a, accu))
                    || call.target.as_deref().is_some_and(|t| appends(t, accu))
            }
            _ => false,
        }
    }
    appends(&comprehension.loop_step, &comprehension.accu_var)
}

fn text(len: u64) -> Bound {
    Bound {
        len,
        inner: 0,
        vol: 1,
    }
}

/// `split`/`findAll` of a string: at most one more piece than it has bytes.
fn pieces(of: Bound) -> Bound {
    Bound {
        len: of.len.saturating_add(1),
        inner: of.len,
        vol: of.len.saturating_add(2),
    }
}

/// Exact bounds of a JSON value.
fn measure(node: &Json) -> Bound {
    match node {
        Json::Null | Json::Bool(_) | Json::Number(_) => SCALAR,
        Json::String(s) => text(s.len() as u64),
        Json::Array(items) => {
            let mut bound = Bound {
                len: items.len() as u64,
                inner: 0,
                vol: 1,
            };
            for item in items {
                let b = measure(item);
                bound.inner = bound.inner.max(b.len).max(b.inner);
                bound.vol = bound.vol.saturating_add(b.vol);
            }
            bound
        }
        Json::Object(map) => {
            let mut bound = Bound {
                len: map.len() as u64,
                inner: 0,
                vol: 1,
            };
            for (key, value) in map {
                let b = measure(value);
                bound.inner = bound.inner.max(key.len() as u64).max(b.len).max(b.inner);
                bound.vol = bound.vol.saturating_add(1).saturating_add(b.vol);
            }
            bound
        }
    }
}

#[cfg(test)]
mod tests;
