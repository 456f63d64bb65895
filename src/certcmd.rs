//! `pivault cert dev`: development certificates for the gateway.

use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `pivault cert`.
#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Make a self-signed certificate for development and tests
    /// (DIR/cert.pem, DIR/key.pem). Never use it in production.
    Dev(DevArgs),
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Directory for cert.pem and key.pem (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Extra DNS names or IPs (localhost, 127.0.0.1 and ::1 are always in).
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(c: CertCommand) -> Result<Outcome> {
    match c {
        CertCommand::Dev(a) => dev(a),
    }
}

fn dev(a: DevArgs) -> Result<Outcome> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let cert = a.out.join("cert.pem");
    let key = a.out.join("key.pem");
    if !a.force {
        for p in [&cert, &key] {
            if p.exists() {
                bail!("{}: already exists; pass --force to overwrite", p.display());
            }
        }
    }
    let d = vault_proxy::devcert::dev_cert(&a.names)?;
    write(&cert, d.cert_pem.as_bytes(), 0o644)?;
    write(&key, d.key_pem.as_bytes(), 0o600)?;
    println!("wrote {} and {}", cert.display(), key.display());
    eprintln!(
        "pivault: this certificate is self-signed and FOR DEVELOPMENT ONLY: clients trust it only if told to (e.g. curl --cacert {}). Use a certificate from your CA in production.",
        cert.display()
    );
    Ok(Outcome::Ok)
}

fn write(p: &Path, data: &[u8], mode: u32) -> Result<()> {
    let _ = std::fs::remove_file(p);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(p)
        .with_context(|| format!("{}", p.display()))?;
    f.write_all(data)
        .with_context(|| format!("{}", p.display()))?;
    Ok(())
}

/// The loader for `key = "sealed:..."` references; None while no listener
/// uses one.
pub fn sealed_loader(
    cfg: &vault_proxy::Config,
    _unlock: &crate::cli::Unlock,
) -> Result<Option<vault_proxy::tls::SealedKeyLoader>> {
    let uses = cfg.listener.iter().any(|l| {
        l.key.as_deref().is_some_and(|k| k.starts_with("sealed:"))
            || l.sni.iter().any(|s| s.key.starts_with("sealed:"))
    });
    if uses {
        bail!("{}: sealed keys (key = \"sealed:...\") are not supported by this build yet; use a PEM key file", cfg.path.display());
    }
    Ok(None)
}
