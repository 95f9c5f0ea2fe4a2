//! Kubernetes resource quantities, compared exactly (`1Gi` > `1000M`), via `kube_quantity`.

use kube_quantity::ParsedQuantity;

/// A policy ceiling on one resource (`validate.maxResources`), parsed once at load.
#[derive(Clone, Debug)]
pub struct Ceiling {
    pub resource: String,
    /// As written in the policy, so messages and filled limits show the admin's own spelling.
    pub raw: String,
    pub value: ParsedQuantity,
}

pub fn parse(raw: &str) -> Result<ParsedQuantity, String> {
    // kube_quantity accepts a few spellings the API server refuses ("", " 1"); refuse them here.
    if raw.is_empty() || raw.trim() != raw {
        return Err(format!("invalid quantity {raw:?}"));
    }
    ParsedQuantity::try_from(raw).map_err(|err| format!("invalid quantity {raw:?}: {err}"))
}

/// A quantity a resource can have: parsed, and not negative.
pub fn parse_resource(raw: &str) -> Result<ParsedQuantity, String> {
    let value = parse(raw)?;
    if raw.starts_with('-') {
        return Err(format!(
            "invalid quantity {raw:?}: resources cannot be negative"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes_compare_exactly() {
        let gi = parse("1Gi").unwrap();
        let thousand_m = parse("1000M").unwrap();
        assert!(gi > thousand_m);
        assert_eq!(parse("1024Mi").unwrap(), gi);
        assert!(parse("500m").unwrap() < parse("1").unwrap());
        assert_eq!(parse("2").unwrap(), parse("2000m").unwrap());
    }

    #[test]
    fn garbage_is_refused_with_the_input_named() {
        let err = parse("2x").unwrap_err();
        assert!(err.starts_with("invalid quantity \"2x\""), "{err}");
        assert_eq!(parse("").unwrap_err(), "invalid quantity \"\"");
        assert_eq!(parse(" 1").unwrap_err(), "invalid quantity \" 1\"");
    }
}
