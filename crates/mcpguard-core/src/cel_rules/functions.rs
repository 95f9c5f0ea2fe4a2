//! The functions the evaluation context registers (the cel crate's standard ones and
//! kube-cel's Kubernetes library), by how each one's result relates to its inputs, and how a
//! call names one. The checker refuses any other function; the cost model bounds each by its
//! kind.

use kube_cel::cel::common::ast::{CallExpr, Expr, IdedExpr, LiteralValue};

/// How a function's result relates to its inputs, for the cost model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A bool, number, duration, timestamp or small opaque value.
    Scalar,
    /// No larger than one of its inputs or something inside one (`first`, `lowerAscii`,
    /// `orValue`, `url`, ...).
    Within,
    /// Larger than its inputs: its own bound (see `Estimator::call` in the cost model).
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

pub(super) fn function_kind(name: &str) -> Option<Kind> {
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

/// The function a call names: `prefix.name` when its target is an identifier that is not a
/// variable (`is_variable`) and the qualified name is registered, as the interpreter resolves
/// it, else its own name.
pub(super) fn qualified_name(call: &CallExpr, is_variable: impl Fn(&str) -> bool) -> String {
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

/// Whether `name` is an operator (`_+_`, `@in`, `!_`, ...), which the parser names, never
/// the policy's author.
pub(super) fn is_operator(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('@') || name == "!_" || name == "-_"
}

/// What `lists.range(n)` can be bounded by: a literal, or `size(x)`.
pub(super) enum RangeArgument<'p> {
    Literal(u64),
    SizeOf(&'p IdedExpr),
}

/// The argument of `lists.range(...)` when it can be bounded; `None` otherwise.
pub(super) fn range_argument(call: &CallExpr) -> Option<RangeArgument<'_>> {
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

#[cfg(test)]
mod tests;
