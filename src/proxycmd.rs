//! `pivault proxy --config FILE` and `pivault proxy check --config FILE`:
//! thin calls into vault-proxy.

use crate::cli::Unlock;
use crate::Outcome;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// `pivault proxy`.
#[derive(Args, Debug)]
#[command(subcommand_negates_reqs = true)]
pub struct ProxyArgs {
    /// The gateway's TOML configuration (see docs/PROXY.md).
    #[arg(long, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,
    /// Passphrase sources for `key = "sealed:VAULT_DIR:NAME"`.
    #[command(flatten)]
    pub unlock: Unlock,
    #[command(subcommand)]
    pub action: Option<ProxyCommand>,
}

/// `pivault proxy check`.
#[derive(Subcommand, Debug)]
pub enum ProxyCommand {
    /// Validate the configuration and load its certificates, keys and CA
    /// files without opening any socket; exit 0 when all is well, 1 if not.
    Check {
        /// The configuration to check.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub fn run(a: ProxyArgs) -> Result<Outcome> {
    match a.action {
        Some(ProxyCommand::Check { config }) => {
            let path = config
                .or(a.config)
                .context("`pivault proxy check` needs --config FILE")?;
            check(&path)
        }
        None => serve(
            a.config.as_deref().expect("clap: --config is required"),
            &a.unlock,
        ),
    }
}

fn check(path: &Path) -> Result<Outcome> {
    let cfg = vault_proxy::Config::load(path)?;
    vault_proxy::tls::check_files(&cfg, None)?;
    // Warnings do not fail the check: the files load, but should be fixed.
    for w in vault_proxy::filecheck::warnings(&cfg) {
        eprintln!("warning: {w}");
    }
    let modes: Vec<String> = cfg
        .listener
        .iter()
        .map(|l| format!("{} {}", l.mode().as_str(), l.listen))
        .collect();
    println!(
        "{}: OK ({} listener(s): {})",
        path.display(),
        modes.len(),
        modes.join(", ")
    );
    let sealed =
        |k: &vault_proxy::config::KeySource| matches!(k, vault_proxy::config::KeySource::Sealed(_));
    if cfg
        .listener
        .iter()
        .filter_map(|l| l.tls_in())
        .any(|t| t.keys().any(sealed))
    {
        println!("note: sealed keys are opened only by `pivault proxy` (they need the vault's passphrase)");
    }
    Ok(Outcome::Ok)
}

fn serve(path: &Path, unlock: &Unlock) -> Result<Outcome> {
    let cfg = vault_proxy::Config::load(path)?;
    for w in vault_proxy::filecheck::warnings(&cfg) {
        eprintln!("warning: {w}");
    }
    let sealed = crate::certcmd::sealed_loader(&cfg, unlock)?;
    vault_proxy::run_blocking(&cfg, sealed, |bound, metrics| {
        for (name, mode, addr) in bound {
            eprintln!("pivault proxy: {} listener {name} on {addr}", mode.as_str());
        }
        if let Some(m) = metrics {
            eprintln!("pivault proxy: metrics on {m}");
        }
    })
    .with_context(|| format!("proxy with {}", path.display()))?;
    eprintln!("pivault proxy: stopped");
    Ok(Outcome::Ok)
}
