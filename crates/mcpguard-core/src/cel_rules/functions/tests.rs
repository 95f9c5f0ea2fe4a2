//! The function table names only functions the evaluation context registers.

use std::panic::{AssertUnwindSafe, catch_unwind};

use kube_cel::KubeCelExt;
use kube_cel::cel::common::ast::Expr;
use kube_cel::cel::{self, Program};
use pretty_assertions::assert_eq;

use super::*;

/// Why the evaluation context would not run `name` as a function, or `None` when it has it.
/// `name()` must parse as a call of exactly that (possibly qualified) name, and running it
/// must not find the name undeclared. With no arguments a registered function fails, or even
/// panics, on its arguments, but only after it was found: the interpreter looks a function up
/// before it calls it, so only a missing one answers `UndeclaredReference`.
fn not_registered(context: &cel::Context<'_>, name: &str) -> Option<String> {
    let program = match Program::compile(&format!("{name}()")) {
        Ok(program) => program,
        Err(errors) => return Some(format!("`{name}()` does not parse: {errors}")),
    };
    let called = match &program.expression().expr {
        Expr::Call(call) => match call.target.as_deref().map(|target| &target.expr) {
            None => Some(call.func_name.clone()),
            Some(Expr::Ident(prefix)) if call.args.is_empty() => {
                Some(format!("{prefix}.{}", call.func_name))
            }
            Some(_) => None,
        },
        _ => None,
    };
    if called.as_deref() != Some(name) {
        return Some(format!("`{name}()` does not parse as a call of {name}"));
    }
    match catch_unwind(AssertUnwindSafe(|| program.execute(context))) {
        Ok(Err(cel::ExecutionError::UndeclaredReference(missing))) => Some(format!(
            "{name} is not registered ({missing} is undeclared)"
        )),
        Ok(_) | Err(_) => None,
    }
}

#[test]
fn every_function_in_the_cost_table_is_registered() {
    // The table must name only functions the context has (a name it lacks would pass the load
    // check and fail on every object); that the table covers every registered function was
    // checked against the cel and kube-cel sources when they were pinned (137 names).
    let context = cel::Context::default().with_all();
    let tables = [SCALAR_FUNCTIONS, WITHIN_FUNCTIONS, GROWING_FUNCTIONS];
    assert_eq!(tables.iter().map(|t| t.len()).sum::<usize>(), 137);
    let missing: Vec<String> = tables
        .into_iter()
        .flatten()
        .filter_map(|name| not_registered(&context, name))
        .collect();
    assert_eq!(missing, Vec::<String>::new());
    // The check itself tells a name the context lacks, plain or qualified, and one that does
    // not parse as a call, from one it has.
    assert_eq!(not_registered(&context, "size"), None);
    assert_eq!(not_registered(&context, "math.abs"), None);
    assert_eq!(
        not_registered(&context, "shout"),
        Some("shout is not registered (shout is undeclared)".into())
    );
    assert_eq!(
        not_registered(&context, "math.shout"),
        Some("math.shout is not registered (shout is undeclared)".into())
    );
    assert_eq!(
        not_registered(&context, "sets.size"),
        Some("sets.size is not registered (sets is undeclared)".into())
    );
    assert!(
        not_registered(&context, "no such")
            .is_some_and(|why| why.starts_with("`no such()` does not parse")),
    );
    assert_eq!(
        not_registered(&context, "a.b.c"),
        Some("`a.b.c()` does not parse as a call of a.b.c".into())
    );
    assert!(function_kind("shout").is_none());
}
