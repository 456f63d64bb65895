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
    /// Store a TLS private key sealed in VAULT under NAME, for
    /// `key = "sealed:VAULT:NAME"` in the gateway's config (with
    /// `--oidc`: a single sign-on client secret or cookie key file).
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Vault directory.
    pub vault: PathBuf,
    /// Name to store the key as (1-64 of A-Z a-z 0-9 . _ -).
    pub name: String,
    /// The PEM private key file (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: PathBuf,
    /// The file is a `[listener.oidc]` secret, not a TLS key: a cookie key
    /// file (checked as the gateway reads it) or a client secret.
    #[arg(long)]
    pub oidc: bool,
    #[command(flatten)]
    pub unlock: crate::cli::Unlock,
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
        CertCommand::Import(a) => import(a),
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

fn import(a: ImportArgs) -> Result<Outcome> {
    if !keys::sealed_keys::valid_name(&a.name) {
        bail!(
            "`{}` is not a valid key name (1-64 of A-Z a-z 0-9 . _ -)",
            a.name
        );
    }
    let pem = zeroize::Zeroizing::new(
        std::fs::read(&a.key_pem).with_context(|| format!("{}", a.key_pem.display()))?,
    );
    let use_as = if a.oidc {
        // Refuse anything the gateway could not use later: cookie keys as
        // the gateway parses them, or a client secret on one line.
        let text = std::str::from_utf8(&pem).context("an OIDC secret is text")?;
        let keys = vault_proxy::oidc::cookie::CookieKeys::parse(text);
        if keys.is_err() && (text.trim().is_empty() || text.trim().lines().count() > 1) {
            bail!(
                "{}: neither a cookie key file ({}) nor a client secret on one line",
                a.key_pem.display(),
                keys.err().map(|e| e.to_string()).unwrap_or_default()
            );
        }
        "client_secret_file or cookie_key_file"
    } else {
        // Refuse anything rustls could not use later.
        vault_proxy::tls::load_key(
            &vault_proxy::config::KeySource::File(a.key_pem.clone()),
            None,
        )?;
        "key"
    };
    let (_ks, u) = crate::vaultcmd::unseal(&a.vault, &a.unlock)?;
    let file = keys::sealed_keys::seal(&a.vault, &u.keyring, &a.name, &pem)?;
    println!(
        "sealed {} into {} as `{}`; use {use_as} = \"sealed:{}:{}\" and remove the plaintext file",
        a.key_pem.display(),
        file.display(),
        a.name,
        a.vault.display(),
        a.name
    );
    Ok(Outcome::Ok)
}

/// Splits "sealed:VAULT_DIR:NAME".
fn split_sealed(spec: &str) -> Option<(PathBuf, String)> {
    let (vault, name) = spec.strip_prefix("sealed:")?.rsplit_once(':')?;
    Some((PathBuf::from(vault), name.to_string()))
}

/// Opens every `sealed:` key the config names (one unseal per vault, with
/// the usual passphrase sources) and returns a loader serving them from
/// memory (for reloads too); None when no listener uses one.
pub fn sealed_loader(
    cfg: &vault_proxy::Config,
    unlock: &crate::cli::Unlock,
) -> Result<Option<vault_proxy::tls::SealedKeyLoader>> {
    use std::collections::BTreeMap;
    use vault_proxy::config::{KeySource, ListenerKind};
    let specs: Vec<String> = cfg
        .listener
        .iter()
        .flat_map(|l| {
            let keys = l.tls_in().into_iter().flat_map(|t| t.keys());
            let oidc = match &l.kind {
                ListenerKind::Http { oidc: Some(o), .. } => Some(o),
                _ => None,
            };
            keys.filter_map(|k| match k {
                KeySource::Sealed(spec) => Some(spec.clone()),
                KeySource::File(_) => None,
            })
            .chain(
                oidc.into_iter()
                    .flat_map(|o| o.sealed_specs().map(str::to_string)),
            )
        })
        .collect();
    if specs.is_empty() {
        return Ok(None);
    }
    let mut by_vault: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for s in &specs {
        let (v, n) =
            split_sealed(s).with_context(|| format!("`{s}`: expected sealed:VAULT_DIR:NAME"))?;
        by_vault.entry(v).or_default().push(n);
    }
    let mut pems: BTreeMap<String, zeroize::Zeroizing<Vec<u8>>> = BTreeMap::new();
    for (vault, names) in by_vault {
        let (_ks, u) = crate::vaultcmd::unseal(&vault, unlock)
            .with_context(|| format!("unsealing {} for its TLS keys", vault.display()))?;
        for n in &names {
            let pem = keys::sealed_keys::open(&vault, &u.keyring, n)?;
            pems.insert(format!("sealed:{}:{n}", vault.display()), pem);
        }
        crate::auditcmd::record(
            &vault,
            Some(&u.keyring),
            keys::audit::Event::new("proxy-start").detail("tls_keys", names.join(",")),
        );
    }
    let loader = move |spec: &str| -> vault_proxy::Result<Vec<u8>> {
        pems.get(spec)
            .map(|p| p.to_vec())
            .ok_or_else(|| vault_proxy::Error::SealedKey {
                spec: spec.to_string(),
                msg: "not opened at start".into(),
            })
    };
    Ok(Some(std::sync::Arc::new(loader)))
}
