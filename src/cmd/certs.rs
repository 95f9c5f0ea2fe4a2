//! `mcpguard certs generate`.

use base64::Engine as _;
use mcpguard_core::certs;
use serde_json::Value;

use crate::cmd::args::{CertsGenerateArgs, CertsInjectArgs};

pub fn generate(args: &CertsGenerateArgs) -> anyhow::Result<()> {
    let [ca, cert, key] =
        [certs::CA_FILE, certs::CERT_FILE, certs::KEY_FILE].map(|f| args.out.join(f));
    if !args.force {
        // A replaced CA no longer matches the caBundle already installed from it.
        if let Some(existing) = [&ca, &cert, &key].into_iter().find(|path| path.exists()) {
            anyhow::bail!(
                "{} exists; use --force to replace the certificates in {}",
                existing.display(),
                args.out.display()
            );
        }
    }
    let mut names = certs::service_names(&args.service, &args.namespace);
    names.extend(args.extra_names.iter().cloned());
    let bundle = certs::generate(&names, jiff::Timestamp::now())?;
    super::cert_files::write_dir(&args.out, &bundle)?;
    println!(
        "wrote {}, {} and {} for {}",
        ca.display(),
        cert.display(),
        key.display(),
        names.join(", ")
    );
    Ok(())
}

const WEBHOOK_CONFIGURATION_KINDS: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

pub fn inject(args: &CertsInjectArgs) -> anyhow::Result<()> {
    let ca = std::fs::read_to_string(&args.ca)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.ca.display()))?;
    if mcpguard_core::rotation::cert_info(&ca).is_none() {
        anyhow::bail!("{}: not a PEM certificate", args.ca.display());
    }
    let objects = super::inputs::read_inputs(&args.manifests)
        .all_or_first_error()
        .map_err(anyhow::Error::msg)?;
    let mut out = String::new();
    let mut injected = 0;
    for sourced in objects {
        let mut object = sourced.object;
        if !object
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|kind| WEBHOOK_CONFIGURATION_KINDS.contains(&kind))
        {
            continue;
        }
        inject_ca_bundle(&mut object, &ca);
        injected += 1;
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&object)?);
    }
    if injected == 0 {
        anyhow::bail!(
            "no MutatingWebhookConfiguration or ValidatingWebhookConfiguration in the input"
        );
    }
    print!("{out}");
    Ok(())
}

/// Sets `caBundle` on every webhook of a webhook configuration object.
pub fn inject_ca_bundle(configuration: &mut Value, ca_pem: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let Some(Value::Array(webhooks)) = configuration.get_mut("webhooks") else {
        return;
    };
    for webhook in webhooks.iter_mut().filter_map(Value::as_object_mut) {
        let client_config = webhook
            .entry("clientConfig")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(client_config) = client_config.as_object_mut() {
            client_config.insert("caBundle".into(), Value::String(encoded.clone()));
        }
    }
}
