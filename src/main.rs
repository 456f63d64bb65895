//! The `pivault` command line: argument parsing and dispatch only. Every
//! command is a thin call into the library crates.

mod auditcmd;
mod certcmd;
mod cli;
mod compliancecmd;
mod docscmd;
mod keyscmd;
mod mountcmd;
mod progress;
mod proxycmd;
mod reencryptcmd;
mod scancmd;
mod secrets;
mod sys;
mod tunables;
mod vaultcmd;

use clap::Parser;
use std::process::ExitCode;

// mimalloc: the gateway allocates per request (hyper's headers and bodies)
// on several threads; glibc malloc cost it about a tenth of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A command's outcome when it did not fail outright.
pub enum Outcome {
    /// Everything worked.
    Ok,
    /// The command finished but found damage (fsck, export): exit 3, so
    /// scripts can tell it from a failure (exit 1).
    Damaged,
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let cli::Command::Proxy(proxycmd::ProxyArgs { action: None, .. }) = &cli.command {
        // The gateway's record copies; see `tunables`. May not return.
        tunables::tune_memcpy();
    }
    // Before any thread exists, and after the one re-execution above
    // (which needs the environment as it was).
    secrets::take_from_env();
    let daemon = matches!(&cli.command, cli::Command::Mount(m) if m.daemon);
    let journal = init_logging(cli.verbose, cli.log_format, daemon);
    mountcmd::LOGS_IN_JOURNAL.store(journal, std::sync::atomic::Ordering::Relaxed);
    if cli.syslog {
        keys::audit::enable_syslog();
    }
    match auditcmd::remote(cli.audit_remote.as_deref(), cli.audit_ca.as_deref()) {
        Ok(Some(r)) => keys::audit_ship::enable(r),
        Ok(None) => {}
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("pivault: error: {}", dedup_chain(&chain));
            return ExitCode::from(1);
        }
    }
    // Nothing this process holds may end up in a core dump.
    sys::harden();
    match run(cli.command) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Damaged) => ExitCode::from(3),
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("pivault: error: {}", dedup_chain(&chain));
            ExitCode::from(1)
        }
    }
}

/// Joins an error chain, dropping a cause already quoted by its parent.
fn dedup_chain(chain: &[String]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for msg in chain {
        if out.last().is_some_and(|prev| prev.contains(msg.as_str())) {
            continue;
        }
        out.push(msg);
    }
    out.join(": ")
}

/// Logs go to stderr, as text or JSON. A `mount --daemon` process also
/// sends them to the journal when there is one: once the mount is ready
/// it no longer has the terminal it started from, and a service manager
/// collects the journal, not a detached terminal.
/// Returns whether logs also go to the journal.
fn init_logging(verbose: u8, format: cli::LogFormat, daemon: bool) -> bool {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let stderr = match format {
        cli::LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        // Colour codes only for a person at a terminal, never into a log
        // file or the journal.
        cli::LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
    };
    let journal = if daemon {
        tracing_journald::layer()
            .ok()
            .map(|l| l.with_syslog_identifier("pivault-mount".into()))
    } else {
        None
    };
    let in_journal = journal.is_some();
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(journal)
        .init();
    in_journal
}

fn run(cmd: cli::Command) -> anyhow::Result<Outcome> {
    use cli::Command::*;
    match cmd {
        Init(a) => vaultcmd::init(a),
        Import(a) => vaultcmd::import(a),
        Export(a) => vaultcmd::export(a),
        Fsck(a) => vaultcmd::fsck(a),
        Keys(k) => keyscmd::run(k),
        Reencrypt(a) => reencryptcmd::run(a),
        Audit(a) => auditcmd::run(a),
        Mount(a) => mountcmd::mount(a),
        Unmount(a) => mountcmd::unmount(a),
        Scan(a) => scancmd::run(a),
        Proxy(a) => proxycmd::run(a),
        Cert(c) => certcmd::run(c),
        Compliance(c) => compliancecmd::run(c),
        Man(a) => docscmd::man(a),
        Completions(a) => docscmd::completions(a),
    }
}
