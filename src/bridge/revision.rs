//! Protocol revisions: which one a request speaks, the checks 2026-07-28 puts on its
//! headers, and the translation of a 2025-11-25 child's `initialize` into the
//! `server/discover` answer a 2026-07-28 client needs.

use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::{Value, json};

use super::child::InputOffer;

/// The stateless revision.
pub const MODERN: &str = "2026-07-28";
/// The revisions with the `initialize` handshake and sessions, oldest first.
pub const HANDSHAKE: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The newest handshake revision: what the bridge asks a child for when it initializes it.
pub const LATEST_HANDSHAKE: &str = "2025-11-25";

pub const HEADER_VERSION: &str = "mcp-protocol-version";
pub const HEADER_SESSION: &str = "mcp-session-id";
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// `UnsupportedProtocolVersionError` (2026-07-28).
pub const UNSUPPORTED_VERSION: i64 = -32022;
/// `HeaderMismatch` (2026-07-28).
pub const HEADER_MISMATCH: i64 = -32020;

/// Which era a POST belongs to, by its `MCP-Protocol-Version` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Era {
    /// Sessions and `initialize`; the header is absent on `initialize` and from clients
    /// older than 2025-06-18 (which the spec lets a server treat as 2025-03-26).
    Handshake,
    Stateless,
}

/// The era of a request, or the JSON-RPC error for an unknown version.
pub fn era(headers: &HeaderMap) -> Result<Era, Value> {
    let Some(value) = headers.get(HEADER_VERSION) else {
        return Ok(Era::Handshake);
    };
    match value.to_str() {
        Ok(MODERN) => Ok(Era::Stateless),
        Ok(v) if HANDSHAKE.contains(&v) => Ok(Era::Handshake),
        _ => Err(unsupported_version()),
    }
}

pub fn unsupported_version() -> Value {
    let mut supported: Vec<&str> = HANDSHAKE.to_vec();
    supported.push(MODERN);
    json!({
        "code": UNSUPPORTED_VERSION,
        "message": "unsupported MCP-Protocol-Version",
        "data": {"supported": supported}
    })
}

/// The 2026-07-28 checks of the mirrored headers against the body: `_meta`'s protocol
/// version equals the header, `Mcp-Method` equals `method`, and for `tools/call`,
/// `prompts/get` and `resources/read`, `Mcp-Name` equals `params.name` / `params.uri`
/// (after decoding the `=?base64?…?=` form). The error text names the header.
pub fn check_stateless_headers(headers: &HeaderMap, body: &Value) -> Result<(), String> {
    let method = body.get("method").and_then(Value::as_str).unwrap_or("");
    let header = |name: &str| -> Result<Option<String>, String> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.to_owned()))
                .map_err(|_| format!("{name} header holds invalid characters")),
        }
    };
    if body.get("id").is_some() {
        let meta_version = body
            .pointer("/params/_meta")
            .and_then(|m| m.get(META_VERSION))
            .and_then(Value::as_str);
        if meta_version != Some(MODERN) {
            return Err(format!(
                "MCP-Protocol-Version header {MODERN} does not match _meta {META_VERSION} {}",
                meta_version.map_or_else(|| "(absent)".to_owned(), |v| format!("'{v}'"))
            ));
        }
    }
    match header(HEADER_METHOD)? {
        None => return Err("Mcp-Method header is required".to_owned()),
        Some(h) if h != method => {
            return Err(format!(
                "Mcp-Method header value '{h}' does not match body value '{method}'"
            ));
        }
        Some(_) => {}
    }
    let name_field = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(field) = name_field {
        let body_name = body
            .pointer(&format!("/params/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(raw) = header(HEADER_NAME)? else {
            return Err(format!("Mcp-Name header is required for {method}"));
        };
        let decoded = decode_sentinel(&raw)?;
        if decoded != body_name {
            return Err(format!(
                "Mcp-Name header value '{raw}' does not match body value '{body_name}'"
            ));
        }
    }
    Ok(())
}

/// Decodes a header value in the `=?base64?…?=` form; other values are taken as they are.
pub fn decode_sentinel(value: &str) -> Result<String, String> {
    let Some(inner) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Ok(value.to_owned());
    };
    base64::engine::general_purpose::STANDARD
        .decode(inner)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| "Mcp-Name header holds invalid base64".to_owned())
}

/// The `initialize` the bridge sends to a handshake-era child it serves to stateless
/// clients. It declares sampling and elicitation, which the bridge carries to the client as
/// input-required rounds when the client declares them too (and refuses otherwise). Roots
/// are not declared: servers ask for them on their own, outside any client request, and
/// such a request cannot be given to one stateless client.
pub fn initialize_request(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": LATEST_HANDSHAKE,
            "capabilities": {"sampling": {}, "elicitation": {"form": {}, "url": {}}},
            "clientInfo": {"name": "mcpguard-bridge", "version": env!("CARGO_PKG_VERSION")}
        }
    })
}

/// The methods whose 2026-07-28 results may be input-required.
const INPUT_METHODS: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];

/// What the client of a stateless `request` can answer, from the capabilities it declared
/// in `_meta`. An elicitation capability with neither `form` nor `url` means form (the
/// revision's rule for backward compatibility).
pub fn input_offer(method: &str, request: &Value) -> InputOffer {
    let capabilities = request
        .pointer("/params/_meta")
        .and_then(|meta| meta.get(META_CAPABILITIES))
        .and_then(Value::as_object);
    let has = |name: &str| capabilities.is_some_and(|c| c.contains_key(name));
    let elicitation = capabilities
        .and_then(|c| c.get("elicitation"))
        .and_then(Value::as_object);
    let elicitation_mode = |mode: &str| elicitation.is_some_and(|e| e.contains_key(mode));
    InputOffer {
        eligible: INPUT_METHODS.contains(&method),
        sampling: has("sampling"),
        elicitation_form: elicitation.is_some()
            && (elicitation_mode("form") || !elicitation_mode("url")),
        elicitation_url: elicitation_mode("url"),
        roots: has("roots"),
    }
}

/// The name a retry must repeat: the tool or prompt name, or the resource URI.
pub fn request_target(request: &Value) -> Option<&str> {
    let params = request.get("params")?;
    params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
}

pub fn initialized_notification() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

/// The probe that tells a 2026-07-28 child from an older one.
pub fn discover_request(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "server/discover",
        "params": {"_meta": {META_VERSION: MODERN}}
    })
}

/// Whether a `server/discover` response shows a child that speaks 2026-07-28.
pub fn child_is_stateless(discover_response: &Value) -> bool {
    discover_response
        .pointer("/result/supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|versions| versions.iter().any(|v| v.as_str() == Some(MODERN)))
}

/// The `server/discover` result for a handshake-era child, from its `initialize` result:
/// its capabilities, server info and instructions, offered at 2026-07-28 (the bridge does
/// the translation). Caching is left at "immediately stale", since the child may change.
pub fn discover_from_initialize(initialize_result: &Value) -> Value {
    let mut result = json!({
        "supportedVersions": [MODERN],
        "capabilities": initialize_result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
    });
    for field in ["serverInfo", "instructions"] {
        if let Some(value) = initialize_result.get(field) {
            result[field] = value.clone();
        }
    }
    result
}

/// Results of these methods are cacheable in 2026-07-28 and must carry `ttlMs` and
/// `cacheScope`.
const CACHEABLE: [&str; 6] = [
    "server/discover",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// Makes a handshake-era child's response to `method` a valid 2026-07-28 result: every
/// result says `resultType: complete` (a handshake-era server has no input-required
/// results), and cacheable ones are "immediately stale, private", the most cautious
/// directives, since the bridge cannot know how long the child's answer stays true. Fields
/// the child set itself are kept.
pub fn to_stateless_result(method: &str, response: &mut Value) {
    let Some(result) = response.get_mut("result").and_then(Value::as_object_mut) else {
        return;
    };
    result
        .entry("resultType")
        .or_insert_with(|| json!("complete"));
    if CACHEABLE.contains(&method) {
        result.entry("ttlMs").or_insert_with(|| json!(0));
        result
            .entry("cacheScope")
            .or_insert_with(|| json!("private"));
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn call(name: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "_meta": {META_VERSION: MODERN}}})
    }

    #[test]
    fn era_follows_the_version_header() {
        assert_eq!(era(&headers(&[])), Ok(Era::Handshake));
        assert_eq!(
            era(&headers(&[(HEADER_VERSION, "2025-11-25")])),
            Ok(Era::Handshake)
        );
        assert_eq!(
            era(&headers(&[(HEADER_VERSION, MODERN)])),
            Ok(Era::Stateless)
        );
        let err = era(&headers(&[(HEADER_VERSION, "2099-01-01")])).unwrap_err();
        assert_eq!(err["code"], UNSUPPORTED_VERSION);
        assert_eq!(
            err["data"]["supported"],
            json!([
                "2024-11-05",
                "2025-03-26",
                "2025-06-18",
                "2025-11-25",
                "2026-07-28"
            ])
        );
    }

    #[test]
    fn stateless_headers_must_mirror_the_body() {
        let ok = headers(&[(HEADER_METHOD, "tools/call"), (HEADER_NAME, "echo")]);
        assert_eq!(check_stateless_headers(&ok, &call("echo")), Ok(()));
        let encoded = headers(&[
            (HEADER_METHOD, "tools/call"),
            (HEADER_NAME, "=?base64?SGVsbG8sIOS4lueVjA==?="),
        ]);
        assert_eq!(
            check_stateless_headers(&encoded, &call("Hello, 世界")),
            Ok(())
        );
        assert_eq!(
            check_stateless_headers(&ok, &call("add")),
            Err("Mcp-Name header value 'echo' does not match body value 'add'".into())
        );
        assert_eq!(
            check_stateless_headers(&headers(&[(HEADER_METHOD, "tools/call")]), &call("echo")),
            Err("Mcp-Name header is required for tools/call".into())
        );
        assert_eq!(
            check_stateless_headers(&headers(&[]), &call("echo")),
            Err("Mcp-Method header is required".into())
        );
        assert_eq!(
            check_stateless_headers(&headers(&[(HEADER_METHOD, "tools/list")]), &call("echo")),
            Err(
                "Mcp-Method header value 'tools/list' does not match body value 'tools/call'"
                    .into()
            )
        );
        let mut old_meta = call("echo");
        old_meta["params"]["_meta"][META_VERSION] = json!("2025-11-25");
        assert_eq!(
            check_stateless_headers(&ok, &old_meta),
            Err(format!(
                "MCP-Protocol-Version header {MODERN} does not match _meta {META_VERSION} '2025-11-25'"
            ))
        );
        let bad_b64 = headers(&[
            (HEADER_METHOD, "tools/call"),
            (HEADER_NAME, "=?base64?***?="),
        ]);
        assert_eq!(
            check_stateless_headers(&bad_b64, &call("echo")),
            Err("Mcp-Name header holds invalid base64".into())
        );
    }

    #[test]
    fn handshake_results_get_the_stateless_fields_and_keep_their_own() {
        let mut list = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [], "ttlMs": 5}});
        to_stateless_result("tools/list", &mut list);
        assert_eq!(
            list["result"],
            json!({"tools": [], "ttlMs": 5, "cacheScope": "private", "resultType": "complete"})
        );
        let mut call = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}});
        to_stateless_result("tools/call", &mut call);
        assert_eq!(
            call["result"],
            json!({"content": [], "resultType": "complete"})
        );
        let mut error = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "m"}});
        let before = error.clone();
        to_stateless_result("tools/list", &mut error);
        assert_eq!(error, before);
    }

    #[test]
    fn the_input_offer_is_read_from_the_capabilities_in_meta() {
        let request = |capabilities: Value| {
            json!({"params": {"name": "t",
                "_meta": {META_CAPABILITIES: capabilities, META_VERSION: MODERN}}})
        };
        assert_eq!(
            input_offer(
                "tools/call",
                &request(json!({"elicitation": {}, "sampling": {}}))
            ),
            InputOffer {
                eligible: true,
                sampling: true,
                elicitation_form: true,
                elicitation_url: false,
                roots: false,
            }
        );
        assert_eq!(
            input_offer(
                "resources/read",
                &request(json!({"elicitation": {"url": {}}, "roots": {}}))
            ),
            InputOffer {
                eligible: true,
                elicitation_url: true,
                roots: true,
                ..InputOffer::default()
            }
        );
        assert_eq!(
            input_offer(
                "prompts/get",
                &request(json!({"elicitation": {"form": {}, "url": {}}}))
            ),
            InputOffer {
                eligible: true,
                elicitation_form: true,
                elicitation_url: true,
                ..InputOffer::default()
            }
        );
        // Not an input method, or no capabilities at all.
        assert_eq!(
            input_offer("tools/list", &request(json!({"sampling": {}}))),
            InputOffer {
                sampling: true,
                ..InputOffer::default()
            }
        );
        assert_eq!(
            input_offer("tools/call", &json!({"params": {}})),
            InputOffer {
                eligible: true,
                ..InputOffer::default()
            }
        );
        assert_eq!(request_target(&call("t")), Some("t"));
        assert_eq!(
            request_target(&json!({"params": {"uri": "file:///a"}})),
            Some("file:///a")
        );
    }

    #[test]
    fn discover_is_made_from_the_initialize_result() {
        let init = json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
            "serverInfo": {"name": "s", "version": "1"}});
        assert_eq!(
            discover_from_initialize(&init),
            json!({"supportedVersions": [MODERN], "capabilities": {"tools": {}},
                "serverInfo": {"name": "s", "version": "1"}, "resultType": "complete",
                "ttlMs": 0, "cacheScope": "private"})
        );
        assert!(child_is_stateless(
            &json!({"result": {"supportedVersions": ["2025-11-25", MODERN]}})
        ));
        assert!(!child_is_stateless(
            &json!({"error": {"code": -32601, "message": "Method not found"}})
        ));
    }
}
