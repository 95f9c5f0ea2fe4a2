//! `mcpguard certs generate`.

use crate::certs;
use crate::cli::CertsGenerateArgs;

pub fn generate(args: &CertsGenerateArgs) -> anyhow::Result<()> {
    let mut names = certs::service_names(&args.service, &args.namespace);
    names.extend(args.extra_names.iter().cloned());
    let bundle = certs::generate(&names, time::OffsetDateTime::now_utc())?;
    certs::write_dir(&args.out, &bundle)?;
    println!(
        "wrote {dir}/{ca}, {dir}/{cert} and {dir}/{key} for {names}",
        dir = args.out.display(),
        ca = certs::CA_FILE,
        cert = certs::CERT_FILE,
        key = certs::KEY_FILE,
        names = names.join(", ")
    );
    Ok(())
}
