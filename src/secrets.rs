//! Where secrets come from, in the documented order: a file named on the
//! command line, a file named in the environment, the environment itself,
//! and last the terminal without echo.

use crate::cli::{NewSecret, Unlock};
use anyhow::{bail, Context, Result};
use keys::Passphrase;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// The variables that may hold a secret itself (not a file name).
const SECRET_VARS: [&str; 3] = [
    "PIVAULT_PASSPHRASE",
    "PIVAULT_NEW_PASSPHRASE",
    "PIVAULT_RECOVERY_KEY",
];

/// Secrets taken out of the environment, by variable name.
type Taken = HashMap<&'static str, Zeroizing<Vec<u8>>>;

/// What `take_from_env` took, set once at start.
static TAKEN: OnceLock<Taken> = OnceLock::new();

/// Takes every secret variable out of the environment, first thing in
/// `main`: the value is kept here (zeroized when dropped) and wiped from
/// the environment block, so `/proc/PID/environ` of a long-running mount
/// or gateway does not show it and no child process inherits it.
pub fn take_from_env() {
    let mut taken = HashMap::new();
    for name in SECRET_VARS {
        if let Some(v) = std::env::var_os(name) {
            taken.insert(
                name,
                Zeroizing::new(std::os::unix::ffi::OsStringExt::into_vec(v)),
            );
            crate::sys::scrub_env(name);
        }
    }
    let _ = TAKEN.set(taken);
}

/// The value `take_from_env` took for `name`, if any.
pub fn env_secret(name: &str) -> Option<Zeroizing<Vec<u8>>> {
    TAKEN.get()?.get(name).cloned()
}

fn read_file(path: &Path) -> Result<Passphrase> {
    let mut bytes = std::fs::read(path)
        .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Ok(Passphrase::new(bytes))
}

fn from_env(file_var: &str, var: &str) -> Result<Option<Passphrase>> {
    if let Some(p) = std::env::var_os(file_var) {
        return read_file(Path::new(&p)).map(Some);
    }
    Ok(env_secret(var).map(|v| Passphrase::new(v.to_vec())))
}

fn prompt(text: &str) -> Result<Passphrase> {
    match rpassword::prompt_password(text) {
        Ok(s) => Ok(Passphrase::new(s.into_bytes())),
        Err(_) => bail!(
            "no passphrase given and no terminal to ask on: use --passphrase-file, PIVAULT_PASSPHRASE_FILE or PIVAULT_PASSPHRASE"
        ),
    }
}

fn prompt_twice(what: &str) -> Result<Passphrase> {
    let a = prompt(&format!("{what}: "))?;
    if a.is_empty() {
        bail!("the passphrase is empty; choose a long passphrase (nothing was changed)");
    }
    let b = prompt(&format!("{what} (again): "))?;
    if a != b {
        bail!("the two passphrases do not match (nothing was changed)");
    }
    Ok(a)
}

/// The passphrase that unseals an existing vault.
pub fn current(unlock: &Unlock) -> Result<Passphrase> {
    if let Some(f) = &unlock.passphrase_file {
        return read_file(f);
    }
    if let Some(p) = from_env("PIVAULT_PASSPHRASE_FILE", "PIVAULT_PASSPHRASE")? {
        return Ok(p);
    }
    prompt("Passphrase: ")
}

/// The passphrase of a vault being created (same sources as [`current`],
/// but asked twice on a terminal).
pub fn for_init(file: Option<&Path>) -> Result<Passphrase> {
    let p = match file {
        Some(f) => read_file(f)?,
        None => match from_env("PIVAULT_PASSPHRASE_FILE", "PIVAULT_PASSPHRASE")? {
            Some(p) => p,
            None => prompt_twice("New vault passphrase")?,
        },
    };
    non_empty(p)
}

/// A new passphrase for a slot.
pub fn new_passphrase(n: &NewSecret) -> Result<Passphrase> {
    let p = match &n.new_passphrase_file {
        Some(f) => read_file(f)?,
        None => match from_env("PIVAULT_NEW_PASSPHRASE_FILE", "PIVAULT_NEW_PASSPHRASE")? {
            Some(p) => p,
            None => prompt_twice("New passphrase")?,
        },
    };
    non_empty(p)
}

fn non_empty(p: Passphrase) -> Result<Passphrase> {
    if p.is_empty() {
        bail!("the passphrase is empty; choose a long passphrase (nothing was changed)");
    }
    Ok(p)
}
