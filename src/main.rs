use std::process::ExitCode;

/// Reviews build and drop many small JSON nodes; under glibc's allocator malloc and free
/// were about a third of a review's time (perf, benches/review.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use mcpguard::cmd;
use mcpguard::cmd::args::{CertsCommand, Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Dropping the guard flushes what is still queued, so it lives until main returns.
    let _log_guard = init_tracing(cli.log_format);
    match cli.command {
        Command::Serve(args) => run_async("serve", cmd::serve::run(*args)),
        Command::Check(args) => ExitCode::from(cmd::check::check(&args)),
        Command::Mutate(args) => ExitCode::from(cmd::check::mutate(&args)),
        Command::Test(args) => ExitCode::from(cmd::policy_test::run(&args)),
        Command::Audit(args) => ExitCode::from(cmd::audit::main(&args)),
        Command::Crd => match mcpguard_core::crds::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("mcpguard crd: {err}");
                ExitCode::from(2)
            }
        },
        Command::Render(args) => ExitCode::from(cmd::render::render(&args)),
        Command::Certs(CertsCommand::Generate(args)) => {
            report("certs generate", cmd::certs::generate(&args))
        }
        Command::Certs(CertsCommand::Inject(args)) => {
            report("certs inject", cmd::certs::inject(&args))
        }
        Command::Bundle(args) => {
            print!("{}", cmd::bundle::stream(args.part));
            ExitCode::SUCCESS
        }
        Command::Bridge(args) => run_async("bridge", cmd::bridge::run(*args)),
        Command::CopySelf(args) => report("copy-self", cmd::copy_self::run(&args)),
        Command::Version => {
            println!("mcpguard {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Completion(args) => {
            clap_complete::generate(
                args.shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "mcpguard",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}

fn init_tracing(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCPGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Buffered: the background writer flushes whenever it has drained its queue, so a burst
    // of review lines is one write, not one syscall per line (the writer thread's syscalls
    // and wake-ups were a tenth of the server's CPU under load, one line per mutation).
    let stderr = std::io::BufWriter::new(std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking(stderr);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => {
            use std::io::IsTerminal as _;
            let no_color = std::env::var_os("NO_COLOR");
            let colour =
                mcpguard::logging::colour(std::io::stderr().is_terminal(), no_color.as_deref());
            builder.with_ansi(colour).init()
        }
        LogFormat::Json => builder
            .event_format(mcpguard::logging::FlatJson::default())
            .init(),
    }
    guard
}

/// Runs a long-running subcommand on a multi-threaded runtime, reporting as [`report`].
fn run_async(
    command: &str,
    future: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => report(command, runtime.block_on(future)),
        Err(err) => {
            eprintln!("mcpguard: cannot start the async runtime: {err}");
            ExitCode::from(1)
        }
    }
}

fn report(command: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mcpguard {command}: {err:#}");
            ExitCode::from(1)
        }
    }
}
