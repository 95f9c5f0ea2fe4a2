//! AdmissionReview `admission.k8s.io/v1` on the wire.
//!
//! Own types rather than `kube_core::admission`: kube's request wraps the object in a
//! `DynamicObject`, whose typed metadata drops fields it does not know (mutation must keep
//! them), and kube's response serialises `patch` as an array of numbers, while the
//! documented wire form is a base64 string. The GVK/GVR pieces are kube's.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::UserInfo;
use kube_core::{GroupVersionKind, GroupVersionResource};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::object::KubeObject;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub request: Option<AdmissionRequest>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kept as a string: an operation this version does not know is admitted with a warning,
    /// not refused as malformed.
    pub operation: String,
    #[serde(default)]
    pub user_info: UserInfo,
    /// Parsed without building `metadata.managedFields` (see [`KubeObject`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<KubeObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<KubeObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl AdmissionRequest {
    pub fn operation(&self) -> Option<Operation> {
        match self.operation.as_str() {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            "CONNECT" => Some(Operation::Connect),
            _ => None,
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }

    pub fn sub_resource(&self) -> &str {
        self.sub_resource.as_deref().unwrap_or("")
    }

    /// A name for messages: the request's, else the object's `name` or `generateName`.
    pub fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        let metadata = self.object.as_ref().and_then(|o| o.get("metadata"));
        let field = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_str);
        field("name")
            .or(field("generateName"))
            .unwrap_or("")
            .to_owned()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReviewOut {
    pub api_version: String,
    pub kind: String,
    pub response: AdmissionResponse,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    /// Base64 of the JSON Patch document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseStatus {
    pub code: u16,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
}

impl AdmissionResponse {
    pub fn with_patch(mut self, patch: &json_patch::Patch) -> Self {
        // Serialising a Patch (a list of plain operations) into a Vec cannot fail.
        let bytes = serde_json::to_vec(patch).unwrap_or_default();
        self.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.patch_type = Some("JSONPatch".into());
        self
    }

    /// Decodes `patch` (for tests and clients of this crate).
    pub fn decoded_patch(&self) -> Option<Result<json_patch::Patch, String>> {
        let encoded = self.patch.as_ref()?;
        Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("patch is not base64: {e}"))
                .and_then(|bytes| {
                    serde_json::from_slice(&bytes)
                        .map_err(|e| format!("patch is not a JSON Patch: {e}"))
                }),
        )
    }

    pub fn into_review(self) -> AdmissionReviewOut {
        AdmissionReviewOut {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            response: self,
        }
    }
}

/// An AdmissionResponse's parts, borrowed, for [`review_json`].
#[derive(Clone, Copy, Debug)]
pub struct ResponseParts<'a> {
    pub uid: &'a str,
    pub allowed: bool,
    pub status: Option<&'a ResponseStatus>,
    pub patch: Option<&'a json_patch::Patch>,
    pub audit_annotations: &'a BTreeMap<String, String>,
    pub warnings: &'a [String],
}

/// The AdmissionReview answer, byte for byte as serde writes the [`AdmissionResponse`] made
/// of `parts` (`into_review`, then `serde_json::to_vec`), without making it: the patch is
/// serialised once, and its base64 (most of a mutation's answer) is encoded straight into
/// the body, with no copy to escape (base64 needs no JSON escaping).
pub fn review_json(parts: ResponseParts<'_>) -> Vec<u8> {
    let patch = parts
        .patch
        .map(|patch| serde_json::to_vec(patch).unwrap_or_default());
    let base64_len = patch
        .as_ref()
        .map_or(0, |p| base64::encoded_len(p.len(), true).unwrap_or(0));
    let mut out = Vec::with_capacity(256 + base64_len);
    out.extend_from_slice(br#"{"apiVersion":"#);
    write_json(&mut out, API_VERSION);
    out.extend_from_slice(br#","kind":"#);
    write_json(&mut out, KIND);
    out.extend_from_slice(br#","response":{"uid":"#);
    write_json(&mut out, parts.uid);
    out.extend_from_slice(br#","allowed":"#);
    write_json(&mut out, &parts.allowed);
    if let Some(status) = parts.status {
        out.extend_from_slice(br#","status":"#);
        write_json(&mut out, status);
    }
    if let Some(patch) = &patch {
        out.extend_from_slice(br#","patchType":"JSONPatch","patch":""#);
        let start = out.len();
        out.resize(start + base64_len, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(patch, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
        out.push(b'"');
    }
    if !parts.audit_annotations.is_empty() {
        out.extend_from_slice(br#","auditAnnotations":"#);
        write_json(&mut out, parts.audit_annotations);
    }
    if !parts.warnings.is_empty() {
        out.extend_from_slice(br#","warnings":"#);
        write_json(&mut out, parts.warnings);
    }
    out.extend_from_slice(b"}}");
    out
}

/// Strings, string maps and a status into a Vec: serialising them cannot fail.
fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    let _ = serde_json::to_writer(out, value);
}

impl ResponseStatus {
    pub fn forbidden(message: String) -> Self {
        ResponseStatus {
            code: 403,
            message,
            reason: "Forbidden".into(),
            status: "Failure".into(),
        }
    }

    /// The object itself is invalid, as the API server answers a failed validation.
    pub fn invalid(message: String) -> Self {
        ResponseStatus {
            code: 422,
            message,
            reason: "Invalid".into(),
            status: "Failure".into(),
        }
    }

    pub fn bad_request(message: String) -> Self {
        ResponseStatus {
            code: 400,
            message,
            reason: "BadRequest".into(),
            status: "Failure".into(),
        }
    }
}
