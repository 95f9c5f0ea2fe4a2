//! Parsing one expression and checking its tree: refuse, at load, what would fail on every
//! input or could not be bounded (too long, nested too deep, a run of `!`, an unknown
//! variable or function, message construction, an unboundable `lists.range`), and record
//! what it reads of the input.

use std::panic::catch_unwind;

use kube_cel::cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, MapExpr, StructExpr};
use kube_cel::cel::{self, Program};

use super::VARIABLES;
use super::explain::cut_short;
use super::functions::{function_kind, is_operator, qualified_name, range_argument};
use super::reads::{Reads, Step};

/// Comprehensions (`all`, `exists`, `map`, ...) nested deeper than this are refused at load:
/// the estimate walks each level twice.
const MAX_COMPREHENSION_DEPTH: usize = 8;
/// Expressions nested deeper than this are refused at load: the checker, the cost model, the
/// interpreter and dropping a program recurse once per level (see [`nesting_depth`]), on
/// whatever stack evaluates it, a tokio worker's included. The parser itself also stops
/// expressions nested more than 96 deep in brackets.
const MAX_EXPRESSION_DEPTH: usize = 128;
/// The longest expression accepted, in characters (Unicode code points), checked before the
/// parser runs: cel-go's and cel-cpp's limit.
pub(super) const MAX_EXPRESSION_CHARS: usize = 100_000;

/// Parses `source` and checks it: not too long, not nested too deep, every identifier is a
/// variable or a comprehension's own, every function exists, no message construction (the
/// interpreter does not support it), `lists.range` has a boundable argument. Adds what it
/// reads of `object` and `oldObject` to `reads`.
///
/// Runs only on [`on_compiler_stack`](super::on_compiler_stack): the parser recurses once per level of its parse tree,
/// and so does dropping a tree that is refused here.
pub(super) fn compile_expression(source: &str, reads: &mut Reads) -> Result<Program, String> {
    if source.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let length = source.chars().count();
    if length > MAX_EXPRESSION_CHARS {
        return Err(format!(
            "expression is {length} characters long, more than the limit of {MAX_EXPRESSION_CHARS}"
        ));
    }
    let program = match catch_unwind(|| Program::compile(source)) {
        Ok(Ok(program)) => program,
        Ok(Err(errors)) => return Err(syntax_errors(&errors)),
        Err(_) => return Err("the CEL parser failed on this expression".into()),
    };
    if has_repeated_logical_not(source) {
        return Err(
            "a run of `!` (`!!x`) is refused: the CEL library mcpguard uses reads it as \
                    a single `!`, so the rule would be judged inverted; write `x`, or `!(!x)`"
                .into(),
        );
    }
    if nesting_depth(program.expression(), MAX_EXPRESSION_DEPTH) > MAX_EXPRESSION_DEPTH {
        return Err(format!(
            "expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep, the limit \
             (each operator, field selection, index and call is a level)"
        ));
    }
    let mut checker = Checker {
        scope: Vec::new(),
        reads,
    };
    checker.check(program.expression(), 0)?;
    Ok(program)
}

/// At most this many syntax errors are told (garbage can give one per character).
const MAX_SYNTAX_ERRORS: usize = 3;

/// How deep the cel parser lets `expr` rules nest (brackets, call arguments, `?:`): its default.
const PARSER_NESTING_LIMIT: usize = 96;

fn syntax_errors(errors: &cel::ParseErrors) -> String {
    // The parser's own nesting limit comes back as one debug-printed ANTLR error per bracket
    // past it: told once, in words.
    if errors
        .errors
        .iter()
        .any(|e| e.msg.contains("Recursion limit of "))
    {
        return format!(
            "expression nests more than {PARSER_NESTING_LIMIT} levels of brackets, the parser's limit"
        );
    }
    let mut told: Vec<String> = errors
        .errors
        .iter()
        .take(MAX_SYNTAX_ERRORS)
        .map(|e| format!("{}:{}: {}", e.pos.0, e.pos.1, cut_short(e.msg.clone())))
        .collect();
    if errors.errors.len() > MAX_SYNTAX_ERRORS {
        told.push(format!(
            "and {} more",
            errors.errors.len() - MAX_SYNTAX_ERRORS
        ));
    }
    told.join("; ")
}

/// The depth of an expression tree, counting every node: what the checker, the cost model,
/// the interpreter and dropping the tree each recurse through. Walked with a stack of its own,
/// since the parser returns a tree as deep as the source is long (`1+1+...+1`,
/// `object.a.a...a`, `x[0][0]...[0]`); stops as soon as it is past `limit`.
fn nesting_depth<'e>(root: &'e IdedExpr, limit: usize) -> usize {
    let mut deepest = 0;
    let mut pending: Vec<(&'e IdedExpr, usize)> = vec![(root, 1)];
    while let Some((expr, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if deepest > limit {
            break;
        }
        let mut push = |child: &'e IdedExpr| pending.push((child, depth + 1));
        match &expr.expr {
            Expr::Literal(_) | Expr::Ident(_) | Expr::Unspecified => {}
            Expr::Select(select) => push(&select.operand),
            Expr::Call(call) => {
                call.target.iter().for_each(|target| push(target));
                call.args.iter().for_each(&mut push);
            }
            Expr::List(list) => list.elements.iter().for_each(&mut push),
            Expr::Map(MapExpr { entries }) | Expr::Struct(StructExpr { entries, .. }) => {
                for entry in entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(entry) => {
                            push(&entry.key);
                            push(&entry.value);
                        }
                        EntryExpr::StructField(field) => push(&field.value),
                    }
                }
            }
            Expr::Comprehension(comprehension) => {
                for part in [
                    &comprehension.iter_range,
                    &comprehension.accu_init,
                    &comprehension.loop_cond,
                    &comprehension.loop_step,
                    &comprehension.result,
                ] {
                    push(part);
                }
            }
        }
    }
    deepest
}

/// Whether `source` has two `!` operators in a row (`!!x`, `! !x`), outside strings and
/// comments. cel 0.13's parser folds such a run into one `!` (its visitor wraps the operand
/// once, whatever the run's length), where cel-go and the API server negate once per `!`: a
/// rule `!!has(object.x)` would silently mean `!has(object.x)`. Called on sources that parsed,
/// so strings are well formed. One pass over the bytes: every token it looks for is ASCII.
fn has_repeated_logical_not(source: &str) -> bool {
    let bytes = source.as_bytes();
    let mut at = 0;
    let mut after_not = false;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\'' | b'"' => {
                let raw = at > 0 && matches!(bytes[at - 1], b'r' | b'R');
                let triple = bytes.get(at..at + 3) == Some(&[byte, byte, byte][..]);
                let close_len = if triple { 3 } else { 1 };
                let close = &bytes[at..at + close_len];
                at += close_len;
                while at < bytes.len() && !bytes[at..].starts_with(close) {
                    at += if !raw && bytes[at] == b'\\' { 2 } else { 1 };
                }
                at += close_len;
                after_not = false;
                continue;
            }
            b'/' if bytes.get(at + 1) == Some(&b'/') => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            b'!' if bytes.get(at + 1) == Some(&b'=') => {
                after_not = false;
                at += 2;
                continue;
            }
            b'!' if after_not => return true,
            b'!' => after_not = true,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => after_not = false,
        }
        at += 1;
    }
    false
}

/// Where in `object` or `oldObject` an expression's value comes from.
type Place<'p> = (&'p str, Vec<Step<'p>>);

/// A comprehension's variable in scope while checking; `place` when it ranges over something
/// read from `object` or `oldObject` (`c` in `object.spec.containers.all(c, ...)`).
struct Binding<'p> {
    name: &'p str,
    place: Option<Place<'p>>,
}

struct Checker<'p, 'r> {
    scope: Vec<Binding<'p>>,
    reads: &'r mut Reads,
}

impl<'p> Checker<'p, '_> {
    fn is_variable(&self, name: &str) -> bool {
        self.scope.iter().any(|b| b.name == name) || VARIABLES.contains(&name)
    }

    /// Where `expr` reads from, if it is a variable or a chain of fields from one.
    fn place(&self, expr: &'p IdedExpr) -> Option<Place<'p>> {
        match &expr.expr {
            Expr::Ident(name) => match self.scope.iter().rev().find(|b| b.name == name) {
                Some(binding) => binding.place.clone(),
                None if name == "object" || name == "oldObject" => {
                    Some((name.as_str(), Vec::new()))
                }
                None => None,
            },
            Expr::Select(select) if !select.test => {
                let (root, mut steps) = self.place(&select.operand)?;
                steps.push(Step::Field(&select.field));
                Some((root, steps))
            }
            _ => None,
        }
    }

    /// Records what is read: all of the value at `place`, or (`whole` false) only that it is
    /// there, e.g. a list whose elements are read field by field.
    fn read(&mut self, (root, steps): &Place<'p>, whole: bool) {
        let access = match *root {
            "object" => &mut self.reads.object,
            "oldObject" => &mut self.reads.old_object,
            _ => return,
        };
        access.record(steps, whole);
    }

    /// Recurses once per level: only on trees [`nesting_depth`] has bounded.
    fn check(&mut self, expr: &'p IdedExpr, loops: usize) -> Result<(), String> {
        match &expr.expr {
            Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => {
                if let Some(place) = self.place(expr) {
                    self.read(&place, true);
                }
                self.declared(name)
            }
            Expr::Select(select) => {
                // A chain of fields from a variable (`object.metadata.labels`, `c.image`) reads
                // the value under it, and nothing else of its parents.
                let place = self.place(&select.operand).map(|(root, mut steps)| {
                    steps.push(Step::Field(&select.field));
                    (root, steps)
                });
                match place {
                    Some(place) => {
                        self.read(&place, true);
                        Ok(())
                    }
                    None => self.check(&select.operand, loops),
                }
            }
            Expr::List(list) => list.elements.iter().try_for_each(|e| self.check(e, loops)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(entry) => {
                    self.check(&entry.key, loops)?;
                    self.check(&entry.value, loops)
                }
                EntryExpr::StructField(_) => Err("message construction is not supported".into()),
            }),
            Expr::Struct(structure) => Err(format!(
                "message construction ({} {{...}}) is not supported",
                structure.type_name
            )),
            Expr::Unspecified => Err("incomplete expression".into()),
            Expr::Comprehension(comprehension) => {
                if loops >= MAX_COMPREHENSION_DEPTH {
                    return Err(format!(
                        "comprehensions (all, exists, exists_one, map, filter) are nested more than {MAX_COMPREHENSION_DEPTH} deep"
                    ));
                }
                // Ranging over something read from the input binds the variable to its
                // elements: the list must be there, and each element as the body reads it.
                let range = self.place(&comprehension.iter_range);
                let element = match range {
                    Some((root, mut steps)) => {
                        steps.push(Step::Each);
                        let element = (root, steps);
                        self.read(&element, false);
                        Some(element)
                    }
                    None => {
                        self.check(&comprehension.iter_range, loops)?;
                        None
                    }
                };
                self.check(&comprehension.accu_init, loops)?;
                let pushed = 2 + usize::from(comprehension.iter_var2.is_some());
                self.scope.push(Binding {
                    name: &comprehension.iter_var,
                    place: element,
                });
                self.scope.push(Binding {
                    name: &comprehension.accu_var,
                    place: None,
                });
                if let Some(var2) = &comprehension.iter_var2 {
                    self.scope.push(Binding {
                        name: var2,
                        place: None,
                    });
                }
                let result = [
                    &comprehension.loop_cond,
                    &comprehension.loop_step,
                    &comprehension.result,
                ]
                .into_iter()
                .try_for_each(|e| self.check(e, loops + 1));
                self.scope.truncate(self.scope.len() - pushed);
                result
            }
            Expr::Call(call) => {
                let name = self.function_name(call);
                let qualified = name != call.func_name;
                if !is_operator(&call.func_name) && function_kind(&name).is_none() {
                    return Err(format!("undeclared function {name:?}"));
                }
                if name == "lists.range" && range_argument(call).is_none() {
                    return Err(
                        "lists.range() needs an integer literal or size(...) as its argument, so that its cost can be bounded"
                            .into(),
                    );
                }
                if let Some(target) = &call.target
                    && !qualified
                {
                    self.check(target, loops)?;
                }
                call.args.iter().try_for_each(|arg| self.check(arg, loops))
            }
        }
    }

    fn declared(&self, name: &str) -> Result<(), String> {
        if self.is_variable(name) {
            Ok(())
        } else {
            Err(format!(
                "undeclared reference to {name:?} (variables: {})",
                VARIABLES.join(", ")
            ))
        }
    }

    /// `sets.contains(...)` parses as a method `contains` on an identifier `sets`; the
    /// interpreter resolves it as the function `sets.contains` unless `sets` is a variable.
    fn function_name(&self, call: &CallExpr) -> String {
        qualified_name(call, |name| self.is_variable(name))
    }
}

#[cfg(test)]
mod tests;
