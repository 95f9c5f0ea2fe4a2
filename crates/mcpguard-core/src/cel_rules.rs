//! Custom rules in CEL: `spec.validate.rules`.
//!
//! Each rule is a CEL expression over the variables of a ValidatingAdmissionPolicy:
//!
//! - `object`: the pod being judged; for a workload, the pod its template would create, as
//!   `{metadata, spec}` (defaulted and mutated the way the webhook does it);
//! - `oldObject`: the previous pod on UPDATE (for a workload, its previous template in the same
//!   form), `null` on CREATE;
//! - `request`: `{operation, namespace, name, userInfo: {username, groups}}`;
//! - `params`: `spec.validate.params` (`{}` when absent).
//!
//! A rule that evaluates to `false` is a [`Violation`] named after the rule, so exceptions,
//! modes, the CLI, Events and PolicyReports treat it like any built-in check. An evaluation
//! error, a result that is not a bool, or an input too large for the rule's cost limit is a
//! violation too: a rule that cannot be evaluated never admits silently.
//!
//! Every expression is parsed and checked once, when the policy loads ([`CompiledRules`]);
//! evaluation is pure (no clock, no I/O) and bounded: see [`Estimator`] for the cost model.

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, MapExpr, StructExpr,
};
use kube_cel::cel::{self, Program};
use serde_json::{Value as Json, json};

use crate::policy::ValidateSpec;
use crate::violation::Violation;

/// `spec.validate.costLimit` when the policy does not set it.
pub const DEFAULT_COST_LIMIT: u64 = 1_000_000;

/// The variables an expression may read.
pub const VARIABLES: [&str; 4] = ["object", "oldObject", "request", "params"];

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
pub const MAX_EXPRESSION_CHARS: usize = 100_000;
/// The longest all of a policy's expressions and message expressions may be together, in
/// characters: one expression at [`MAX_EXPRESSION_CHARS`], or many ordinary ones.
pub const MAX_POLICY_CEL_CHARS: usize = 100_000;
/// The stack of the thread that parses and checks expressions ([`on_compiler_stack`]).
const COMPILER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// One rule's source, as the policy wrote it.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CelRule {
    /// The check ID of its violations: a DNS label, unique, not a built-in check ID.
    pub name: String,
    /// CEL; must evaluate to a bool, `true` meaning compliant.
    pub expression: String,
    /// The violation's reason; default `failed expression: <expression>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// CEL evaluating to a string, used as the reason instead of `message` when it succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expression: Option<String>,
}

/// The policy's rules, compiled once at load. Cheap to clone; empty (and free at evaluation)
/// when the policy has no rules.
#[derive(Clone, Default)]
pub struct CompiledRules(Option<Arc<Compiled>>);

struct Compiled {
    /// The standard and Kubernetes functions, and `params`: built once, shared by every
    /// evaluation through an inner scope.
    base: cel::Context<'static>,
    params: Json,
    rules: Vec<CompiledRule>,
    cost_limit: u64,
    /// What the expressions read of `object` and `oldObject`: only that is converted.
    reads: Reads,
}

struct CompiledRule {
    name: String,
    expression: String,
    message: Option<String>,
    program: Program,
    /// `messageExpression`, compiled, with its source.
    message_program: Option<(String, Program)>,
}

impl fmt::Debug for CompiledRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Who asks, and how: what `request` and `oldObject` hold. Outside admission (the CLI, the
/// background audit, the reconciler) it is a CREATE by nobody, with no old object.
#[derive(Clone, Copy, Debug)]
pub struct RuleInput<'a> {
    pub operation: &'a str,
    pub old_object: Option<&'a Json>,
    pub namespace: &'a str,
    /// The request's object name (a workload's, for its template; `generateName` if unnamed).
    pub name: &'a str,
    pub username: &'a str,
    pub groups: &'a [String],
}

impl<'a> RuleInput<'a> {
    /// A CREATE with no old object, as the CLI and the background audit judge objects.
    pub fn create(
        namespace: &'a str,
        name: &'a str,
        username: &'a str,
        groups: &'a [String],
    ) -> Self {
        RuleInput {
            operation: "CREATE",
            old_object: None,
            namespace,
            name,
            username,
            groups,
        }
    }

    fn request_json(&self) -> Json {
        json!({
            "operation": self.operation,
            "namespace": self.namespace,
            "name": self.name,
            "userInfo": {"username": self.username, "groups": self.groups},
        })
    }
}

impl CompiledRules {
    /// Compiles `validate.rules`. Errors are `(field path, problem)`. Rule names are checked by
    /// the policy loader, which knows the built-in check IDs.
    pub fn compile(validate: &ValidateSpec) -> Result<CompiledRules, (String, String)> {
        if validate.rules.is_empty() {
            return Ok(CompiledRules(None));
        }
        within_policy_budget(&validate.rules)?;
        let (rules, reads) = on_compiler_stack(|| compile_rules(&validate.rules))?;
        let params = validate.params.clone().unwrap_or_else(|| json!({}));
        let mut base = cel::Context::default().with_all();
        base.add_variable_from_value("params", to_cel(&params));
        Ok(CompiledRules(Some(Arc::new(Compiled {
            base,
            params,
            rules,
            cost_limit: validate.cost_limit,
            reads,
        }))))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The rule names, in policy order: the check IDs their violations carry.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .flat_map(|compiled| compiled.rules.iter().map(|r| r.name.as_str()))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// Whether any expression reads `oldObject` (so callers build it only when needed).
    pub fn uses_old_object(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|c| !matches!(c.reads.old_object, Access::Nothing))
    }

    /// Whether any expression may read `metadata.managedFields` of `object` or `oldObject`
    /// (so the webhook, which parses them aside, puts them back only when needed).
    pub fn reads_managed_fields(&self) -> bool {
        const PATH: [&str; 2] = ["metadata", "managedFields"];
        self.0
            .as_ref()
            .is_some_and(|c| c.reads.object.reaches(&PATH) || c.reads.old_object.reaches(&PATH))
    }

    /// Every rule against `object`: one violation per rule that is false, fails, or is over
    /// the cost limit. Pure and deterministic.
    pub fn evaluate(&self, object: &Json, input: &RuleInput<'_>) -> Vec<Violation> {
        let Some(compiled) = &self.0 else {
            return Vec::new();
        };
        let request = input.request_json();
        let null = Json::Null;
        let old_object = input.old_object.unwrap_or(&null);
        let roots = [
            ("object", object),
            ("oldObject", old_object),
            ("request", &request),
            ("params", &compiled.params),
        ];
        let mut estimator = Estimator::new(roots);
        // Converting the input to CEL values is the largest fixed cost: done once, and only
        // when some rule is within its limit.
        let mut context: Option<cel::Context<'_>> = None;
        let mut violations = Vec::new();
        for rule in &compiled.rules {
            let cost = estimator.estimate(rule.program.expression());
            if cost > compiled.cost_limit {
                violations.push(Violation {
                    check: rule.name.clone(),
                    reason: format!(
                        "rule {:?} was not evaluated: cost limit exceeded",
                        rule.name
                    ),
                    detail: format!(
                        "estimated cost {cost} for this object is above spec.validate.costLimit {}",
                        compiled.cost_limit
                    ),
                });
                continue;
            }
            let context = context.get_or_insert_with(|| {
                let mut context = compiled.base.new_inner_scope();
                let reads = &compiled.reads;
                context.add_variable_from_value("object", to_cel_reading(object, &reads.object));
                context.add_variable_from_value(
                    "oldObject",
                    to_cel_reading(old_object, &reads.old_object),
                );
                context.add_variable_from_value("request", to_cel(&request));
                context
            });
            match execute(&rule.program, &rule.expression, context) {
                Ok(cel::Value::Bool(true)) => {}
                Ok(cel::Value::Bool(false)) => {
                    let (reason, detail) =
                        rule.failure_message(context, &mut estimator, compiled.cost_limit);
                    violations.push(Violation {
                        check: rule.name.clone(),
                        reason,
                        detail,
                    });
                }
                Ok(other) => violations.push(Violation {
                    check: rule.name.clone(),
                    reason: format!("rule {:?} could not be evaluated", rule.name),
                    detail: format!("expression returned {}, want bool", other.type_of()),
                }),
                Err(message) => violations.push(Violation {
                    check: rule.name.clone(),
                    reason: format!("rule {:?} could not be evaluated", rule.name),
                    detail: message,
                }),
            }
        }
        violations
    }
}

/// Refuses a policy whose expressions together are longer than [`MAX_POLICY_CEL_CHARS`],
/// before any of them is parsed. Parsing is linear but not cheap (about 1 s for one hostile
/// expression at [`MAX_EXPRESSION_CHARS`] on a loaded 2-core machine), and an MCPPolicy is
/// compiled inside its admission review: without a total, one 7 MiB review of 70 such rules
/// would hold a webhook thread for minutes, past every timeout.
fn within_policy_budget(rules: &[CelRule]) -> Result<(), (String, String)> {
    let mut total = 0usize;
    for rule in rules {
        let sources = std::iter::once(&rule.expression).chain(rule.message_expression.as_ref());
        for source in sources {
            // Counting stops at the first source past the budget: the count itself is
            // bounded by the budget plus one expression's length.
            let length = source.chars().count();
            if length > MAX_EXPRESSION_CHARS {
                // Its own limit names it by path, before the parser sees it.
                return Ok(());
            }
            total = total.saturating_add(length);
            if total > MAX_POLICY_CEL_CHARS {
                return Err((
                    "spec.validate.rules".into(),
                    format!(
                        "the expressions and messageExpressions together are more than \
                         {MAX_POLICY_CEL_CHARS} characters long, the limit per policy"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every rule's expression and `messageExpression`, with what they read of the input.
fn compile_rules(rules: &[CelRule]) -> Result<(Vec<CompiledRule>, Reads), (String, String)> {
    let mut compiled = Vec::with_capacity(rules.len());
    let mut reads = Reads::default();
    for (index, rule) in rules.iter().enumerate() {
        let path = |field: &str| format!("spec.validate.rules[{index}].{field}");
        let program = compile_expression(&rule.expression, &mut reads)
            .map_err(|m| (path("expression"), m))?;
        let message_program = match &rule.message_expression {
            None => None,
            Some(source) => Some((
                source.clone(),
                compile_expression(source, &mut reads)
                    .map_err(|m| (path("messageExpression"), m))?,
            )),
        };
        compiled.push(CompiledRule {
            name: rule.name.clone(),
            expression: rule.expression.clone(),
            message: rule.message.clone(),
            program,
            message_program,
        });
    }
    Ok((compiled, reads))
}

impl CompiledRule {
    /// The reason for a `false`: `messageExpression`'s string when it yields a usable one
    /// (non-empty, one line), else `message`, else the expression. As in a
    /// ValidatingAdmissionPolicy, a failing `messageExpression` falls back to `message`; here
    /// the detail says why, for the policy's author.
    fn failure_message(
        &self,
        context: &cel::Context<'_>,
        estimator: &mut Estimator<'_>,
        cost_limit: u64,
    ) -> (String, String) {
        let fallback = || {
            self.message
                .clone()
                .unwrap_or_else(|| format!("failed expression: {}", self.expression))
        };
        let Some((source, program)) = &self.message_program else {
            return (fallback(), String::new());
        };
        let cost = estimator.estimate(program.expression());
        if cost > cost_limit {
            return (
                fallback(),
                format!(
                    "messageExpression not evaluated: estimated cost {cost} is above spec.validate.costLimit {cost_limit}"
                ),
            );
        }
        match execute(program, source, context) {
            Ok(cel::Value::String(text)) if !text.trim().is_empty() && !text.contains('\n') => {
                (text.trim().to_owned(), String::new())
            }
            Ok(cel::Value::String(_)) => (
                fallback(),
                "messageExpression returned an empty or multi-line string".into(),
            ),
            Ok(other) => (
                fallback(),
                format!(
                    "messageExpression returned {}, want string",
                    other.type_of()
                ),
            ),
            Err(message) => (fallback(), format!("messageExpression failed: {message}")),
        }
    }
}

/// Runs a program; a panic inside the interpreter becomes an error, not a crashed review.
/// `source` is the program's expression, which an error may quote from (never the input).
fn execute(
    program: &Program,
    source: &str,
    context: &cel::Context<'_>,
) -> Result<cel::Value, String> {
    match catch_unwind(AssertUnwindSafe(|| program.execute(context))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(explain(&err, source)),
        Err(_) => Err("the CEL interpreter failed on this input".into()),
    }
}

/// Error text is kept to this many characters (a map key quoted from a long expression), so a
/// denial stays readable.
const MAX_ERROR_CHARS: usize = 200;

/// An evaluation error in words that quote nothing of the input. The cel and kube-cel errors
/// carry the values involved (`Division by zero of Int(1)`, a whole map, the string that
/// `duration()`, `matches()` or `quantity()` could not parse), and a value may be a secret
/// that would then reach a denial, a warning, an Event and a PolicyReport. So only what the
/// expression itself names (a function, an operator, a field) and the types involved are told.
fn explain(err: &cel::ExecutionError, source: &str) -> String {
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

/// What the expressions read of `object` and `oldObject`.
#[derive(Debug, Default)]
struct Reads {
    object: Access,
    old_object: Access,
}

/// What is read of a value: nothing, some of its fields, each of its elements in some way,
/// or all of it. Every use of a value other than selecting a field of it or ranging over it
/// (comparing it, indexing it, passing it to a function, `in`, using a comprehension's
/// variable bare) reads all of it; a field selection reads only that field; ranging over a
/// list reads its elements as the comprehension's body reads its variable. So a value
/// converted with only what is read evaluates exactly as the whole one would.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Access {
    #[default]
    Nothing,
    Fields(std::collections::BTreeMap<String, Access>),
    Each(Box<Access>),
    Whole,
}

impl Access {
    /// Whether anything at `path` (or below it) is read.
    fn reaches(&self, path: &[&str]) -> bool {
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
    fn record(&mut self, steps: &[Step<'_>], whole: bool) {
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
fn to_cel_reading(value: &Json, access: &Access) -> cel::Value {
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
fn to_cel(value: &Json) -> cel::Value {
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

// ---------------------------------------------------------------------------------------------
// Compilation: parse, then refuse what would fail on every input or could not be bounded.
// ---------------------------------------------------------------------------------------------

/// Parses `source` and checks it: not too long, not nested too deep, every identifier is a
/// variable or a comprehension's own, every function exists, no message construction (the
/// interpreter does not support it), `lists.range` has a boundable argument. Adds what it
/// reads of `object` and `oldObject` to `reads`.
///
/// Runs only on [`on_compiler_stack`]: the parser recurses once per level of its parse tree,
/// and so does dropping a tree that is refused here.
fn compile_expression(source: &str, reads: &mut Reads) -> Result<Program, String> {
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
        .map(|e| {
            let message = match e.msg.char_indices().nth(MAX_ERROR_CHARS) {
                Some((cut, _)) => format!("{}...", &e.msg[..cut]),
                None => e.msg.clone(),
            };
            format!("{}:{}: {message}", e.pos.0, e.pos.1)
        })
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

/// Runs `compile` on a thread of its own, whose stack holds the deepest parse that
/// [`MAX_EXPRESSION_CHARS`] allows, and waits for it. The parser (an ANTLR visitor) recurses
/// once per level of its parse tree, and a source of `1+1+...` or `a.a.a...` is as deep as it is
/// long, with no brackets to count; dropping the tree recurses as deep again. An 8,000-term
/// `1+1+...` needs 3.1 MiB (release build), so it overflowed a tokio worker's 2 MiB and aborted
/// the whole webhook. The deepest sources [`MAX_EXPRESSION_CHARS`] allows need, in the release
/// build: `1<1<...` 22 MiB, `object.a.a...` 20 MiB, `[[[...` 19 MiB, `1+1+...` 18 MiB; the
/// debug build (tests) compiles them all within these 64 MiB. Every tree is built, checked and,
/// when refused, dropped on this stack; an accepted one is at most [`MAX_EXPRESSION_DEPTH`] deep,
/// which every caller's stack holds. The stack is reserved, not committed: a normal rule touches
/// a few pages of it.
fn on_compiler_stack<T: Send>(
    compile: impl FnOnce() -> Result<T, (String, String)> + Send,
) -> Result<T, (String, String)> {
    let failed = |problem: String| ("spec.validate.rules".to_owned(), problem);
    std::thread::scope(|scope| {
        let compiler = std::thread::Builder::new()
            .name("cel-compile".into())
            .stack_size(COMPILER_STACK_BYTES)
            .spawn_scoped(scope, compile)
            .map_err(|err| failed(format!("cannot start the CEL compiler thread: {err}")))?;
        compiler
            .join()
            .unwrap_or_else(|_| Err(failed("the CEL compiler failed on these rules".into())))
    })
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

/// A step from a variable to what an expression reads: a field, or every element of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step<'p> {
    Field(&'p str),
    Each,
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

fn qualified_name(call: &CallExpr, is_variable: impl Fn(&str) -> bool) -> String {
    if let Some(target) = &call.target
        && let Expr::Ident(prefix) = &target.expr
        && !is_variable(prefix)
    {
        let qualified = format!("{prefix}.{}", call.func_name);
        if function_kind(&qualified).is_some() {
            return qualified;
        }
    }
    call.func_name.clone()
}

fn is_operator(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('@') || name == "!_" || name == "-_"
}

/// What `lists.range(n)` can be bounded by: a literal, or `size(x)`.
enum RangeArgument<'p> {
    Literal(u64),
    SizeOf(&'p IdedExpr),
}

fn range_argument(call: &CallExpr) -> Option<RangeArgument<'_>> {
    let arg = call.args.first()?;
    match &arg.expr {
        Expr::Literal(LiteralValue::Int(n)) => Some(RangeArgument::Literal(
            u64::try_from(*n.inner()).unwrap_or(0),
        )),
        Expr::Literal(LiteralValue::UInt(n)) => Some(RangeArgument::Literal(*n.inner())),
        Expr::Call(size) if size.func_name == "size" => {
            match (&size.target, size.args.as_slice()) {
                (Some(target), []) => Some(RangeArgument::SizeOf(target)),
                (None, [only]) => Some(RangeArgument::SizeOf(only)),
                _ => None,
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The cost model.
// ---------------------------------------------------------------------------------------------

/// How a function's result relates to its inputs, for the cost model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A bool, number, duration, timestamp or small opaque value.
    Scalar,
    /// No larger than one of its inputs or something inside one (`first`, `lowerAscii`,
    /// `orValue`, `url`, ...).
    Within,
    /// Larger than its inputs: its own bound (see [`Estimator::call`]).
    Grows,
}

/// Every function the evaluation context registers (the cel crate's standard ones and
/// kube-cel's Kubernetes library), by how its result relates to its inputs; anything else is
/// refused at load.
#[rustfmt::skip]
const SCALAR_FUNCTIONS: &[&str] = &[
    "contains", "size", "startsWith", "endsWith", "double", "int", "uint", "hasValue",
    "matches", "duration", "timestamp", "getFullYear", "getMonth", "getDayOfYear",
    "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes", "getSeconds",
    "getMilliseconds", "asApproximateFloat", "asInteger", "compareTo", "containsCIDR",
    "containsIP", "family", "indexOf", "isCIDR", "isCIDRv4", "isCIDRv6", "isGlobalUnicast",
    "isGreaterThan", "isIP", "isIPv4", "isIPv6", "isInteger", "isLessThan",
    "isLinkLocalMulticast", "isLinkLocalUnicast", "isLoopback", "isQuantity", "isSemver",
    "isSorted", "isURL", "isUnspecified", "ip.isCanonical", "lastIndexOf", "major", "minor",
    "patch", "prefixLength", "sign", "sum", "math.abs", "math.bitAnd", "math.bitNot",
    "math.bitOr", "math.bitShiftLeft", "math.bitShiftRight", "math.bitXor", "math.ceil",
    "math.floor", "math.isFinite", "math.isInf", "math.isNaN", "math.round", "math.sign",
    "math.sqrt", "math.trunc", "sets.contains", "sets.equivalent", "sets.intersects",
    "optional.none", "format.byte", "format.date", "format.datetime", "format.dns1035Label",
    "format.dns1035LabelPrefix", "format.dns1123Label", "format.dns1123LabelPrefix",
    "format.dns1123Subdomain", "format.dns1123SubdomainPrefix", "format.labelValue",
    "format.qualifiedName", "format.uri", "format.uuid",
];

#[rustfmt::skip]
const WITHIN_FUNCTIONS: &[&str] = &[
    "max", "min", "math.greatest", "math.least", "optional.of", "optional.ofNonZeroValue",
    "value", "or", "orValue", "charAt", "distinct", "first", "last", "lowerAscii", "upperAscii",
    "trim", "substring", "reverse", "slice", "sort", "bytes", "masked", "find",
    "getEscapedPath", "getHost", "getHostname", "getPort", "getScheme", "ip", "cidr", "url",
    "semver", "quantity", "format.named", "base64.decode",
];

#[rustfmt::skip]
const GROWING_FUNCTIONS: &[&str] = &[
    "string", "strings.quote", "jsonpatch.escapeKey", "base64.encode", "replace", "split",
    "join", "format", "findAll", "flatten", "lists.range", "getQuery", "validate", "add", "sub",
];

fn function_kind(name: &str) -> Option<Kind> {
    if SCALAR_FUNCTIONS.contains(&name) {
        Some(Kind::Scalar)
    } else if WITHIN_FUNCTIONS.contains(&name) {
        Some(Kind::Within)
    } else if GROWING_FUNCTIONS.contains(&name) {
        Some(Kind::Grows)
    } else {
        None
    }
}

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
/// the parts the rules read (see [`Access`]), which is linear in the request and bounded by
/// the API server's request size limit.
struct Estimator<'j> {
    roots: [(&'static str, &'j Json); 4],
    memo: HashMap<*const Json, Bound>,
}

/// A variable in scope during the walk.
type Scope<'p, 'j> = Vec<(&'p str, Abs<'j>)>;

impl<'j> Estimator<'j> {
    fn new(roots: [(&'static str, &'j Json); 4]) -> Self {
        Estimator {
            roots,
            memo: HashMap::new(),
        }
    }

    fn estimate(&mut self, expr: &IdedExpr) -> u64 {
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
