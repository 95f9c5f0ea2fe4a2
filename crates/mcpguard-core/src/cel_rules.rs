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
//! evaluation is pure (no clock, no I/O) and bounded.
//!
//! The work is split by job: this module compiles a policy's rules and evaluates them
//! ([`CompiledRules`]); `check` parses one expression and refuses what could not be
//! evaluated or bounded; `functions` is the table of the functions rules may call, by kind;
//! `cost` estimates a rule's work on one object before it runs;
//! `reads` converts only the parts of the input the rules read; `explain` words evaluation
//! errors without quoting the input.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::{self, Program};
use serde_json::{Value as Json, json};

use crate::violation::Violation;

mod check;
mod cost;
mod explain;
mod functions;
mod reads;

use check::{MAX_EXPRESSION_CHARS, compile_expression};
use cost::Estimator;
use explain::explain;
use reads::{Access, Reads, to_cel, to_cel_reading};

/// `spec.validate.costLimit` when the policy does not set it.
pub const DEFAULT_COST_LIMIT: u64 = 1_000_000;

/// The variables an expression may read.
const VARIABLES: [&str; 4] = ["object", "oldObject", "request", "params"];

/// The longest all of a policy's expressions and message expressions may be together, in
/// characters: one expression at [`MAX_EXPRESSION_CHARS`], or many ordinary ones.
const MAX_POLICY_CEL_CHARS: usize = 100_000;
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

/// Why a policy's rules do not compile, and where: a field of one rule, or the rules together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// The rule's index and the field at fault; `None` for the rules as a whole.
    pub at: Option<(usize, RuleField)>,
    /// What is wrong, for the policy's author.
    pub problem: String,
}

/// A field of a [`CelRule`] that holds CEL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleField {
    Expression,
    MessageExpression,
}

impl RuleField {
    /// The field's name in a policy document.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleField::Expression => "expression",
            RuleField::MessageExpression => "messageExpression",
        }
    }
}

impl CompileError {
    fn all_rules(problem: String) -> CompileError {
        CompileError { at: None, problem }
    }

    /// The path of the field at fault, below `rules_path`, the path of the rule list itself:
    /// `{rules_path}[1].expression`, or `rules_path` for the rules as a whole.
    pub fn path(&self, rules_path: &str) -> String {
        match self.at {
            Some((index, field)) => format!("{rules_path}[{index}].{}", field.as_str()),
            None => rules_path.to_owned(),
        }
    }
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
    /// Compiles `rules`, which read `params` (`{}` when `None`) and may each cost at most
    /// `cost_limit` per object. Rule names are checked by the policy loader, which knows the
    /// built-in check IDs; an error says which rule and field it is about ([`CompileError`]).
    pub fn compile(
        rules: &[CelRule],
        params: Option<&Json>,
        cost_limit: u64,
    ) -> Result<CompiledRules, CompileError> {
        if rules.is_empty() {
            return Ok(CompiledRules(None));
        }
        within_policy_budget(rules)?;
        let (rules, reads) = on_compiler_stack(|| compile_rules(rules))?;
        let params = params.cloned().unwrap_or_else(|| json!({}));
        let mut base = cel::Context::default().with_all();
        base.add_variable_from_value("params", to_cel(&params));
        Ok(CompiledRules(Some(Arc::new(Compiled {
            base,
            params,
            rules,
            cost_limit,
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
                    fields: Vec::new(),
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
                        fields: Vec::new(),
                    });
                }
                Ok(other) => violations.push(Violation {
                    check: rule.name.clone(),
                    reason: format!("rule {:?} could not be evaluated", rule.name),
                    detail: format!("expression returned {}, want bool", other.type_of()),
                    fields: Vec::new(),
                }),
                Err(message) => violations.push(Violation {
                    check: rule.name.clone(),
                    reason: format!("rule {:?} could not be evaluated", rule.name),
                    detail: message,
                    fields: Vec::new(),
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
fn within_policy_budget(rules: &[CelRule]) -> Result<(), CompileError> {
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
                return Err(CompileError::all_rules(format!(
                    "the expressions and messageExpressions together are more than \
                     {MAX_POLICY_CEL_CHARS} characters long, the limit per policy"
                )));
            }
        }
    }
    Ok(())
}

/// Every rule's expression and `messageExpression`, with what they read of the input.
fn compile_rules(rules: &[CelRule]) -> Result<(Vec<CompiledRule>, Reads), CompileError> {
    let mut compiled = Vec::with_capacity(rules.len());
    let mut reads = Reads::default();
    for (index, rule) in rules.iter().enumerate() {
        let at = |field: RuleField| {
            move |problem| CompileError {
                at: Some((index, field)),
                problem,
            }
        };
        let program =
            compile_expression(&rule.expression, &mut reads).map_err(at(RuleField::Expression))?;
        let message_program = match &rule.message_expression {
            None => None,
            Some(source) => Some((
                source.clone(),
                compile_expression(source, &mut reads).map_err(at(RuleField::MessageExpression))?,
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

/// Runs `compile` on a thread of its own, whose stack holds the deepest parse that
/// [`MAX_EXPRESSION_CHARS`] allows, and waits for it. The parser (an ANTLR visitor) recurses
/// once per level of its parse tree, and a source of `1+1+...` or `a.a.a...` is as deep as it is
/// long, with no brackets to count; dropping the tree recurses as deep again. An 8,000-term
/// `1+1+...` needs 3.1 MiB (release build), so it overflowed a tokio worker's 2 MiB and aborted
/// the whole webhook. The deepest sources [`MAX_EXPRESSION_CHARS`] allows need, in the release
/// build: `1<1<...` 22 MiB, `object.a.a...` 20 MiB, `[[[...` 19 MiB, `1+1+...` 18 MiB; the
/// debug build (tests) compiles them all within these 64 MiB. Every tree is built, checked and,
/// when refused, dropped on this stack; an accepted one is at most 128 levels deep (the
/// checker's `MAX_EXPRESSION_DEPTH`), which every caller's stack holds. The stack is reserved,
/// not committed: a normal rule touches a few pages of it.
fn on_compiler_stack<T: Send>(
    compile: impl FnOnce() -> Result<T, CompileError> + Send,
) -> Result<T, CompileError> {
    let failed = CompileError::all_rules;
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

#[cfg(test)]
mod tests;
