//! The command-line contract (docs and design.md list it; scripts depend on
//! these names).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// pivault: encrypted folders, TLS for legacy apps, and key management for
/// Massachusetts 201 CMR 17.00.
#[derive(Parser, Debug)]
#[command(name = "pivault", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug); PIVAULT_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Also send audit records to syslog/journald (as PIVAULT_SYSLOG=1 does).
    #[arg(long, global = true)]
    pub syslog: bool,
    /// Ship every audit record to a syslog server over TLS (RFC 5425,
    /// tls://HOST:6514); records it cannot take wait in the vault's log.
    /// Without it, /etc/pivault/audit.toml (or PIVAULT_AUDIT_CONFIG) is
    /// read when it exists.
    #[arg(long, global = true, value_name = "URL", env = "PIVAULT_AUDIT_REMOTE")]
    pub audit_remote: Option<String>,
    /// CA certificates (PEM) that vouch for the audit server; the system's
    /// roots otherwise.
    #[arg(long, global = true, value_name = "FILE", env = "PIVAULT_AUDIT_CA")]
    pub audit_ca: Option<PathBuf>,
    /// Log lines on stderr as text (default) or one JSON object per line
    /// (for a log pipeline: the gateway's refusals, reloads, errors).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "PIVAULT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new vault in VAULT (a new or empty directory).
    Init(InitArgs),
    /// Copy a plaintext directory tree into a vault (no mount needed).
    Import(ImportArgs),
    /// Write a vault's plaintext tree to an empty or new directory.
    Export(ExportArgs),
    /// Check every name, directory and block of a vault; list what is damaged.
    Fsck(FsckArgs),
    /// Manage key slots and keystore backups.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Rewrite every file still under an older data key to the newest
    /// (resumable); `--retire` then removes the old keys.
    Reencrypt(ReencryptArgs),
    /// Show or verify the vault's audit log (needs no passphrase).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Mount a vault as a folder (FUSE); stays in the foreground until unmounted.
    Mount(MountArgs),
    /// Unmount a mounted vault.
    Unmount(UnmountArgs),
    /// Find unprotected PI (SSNs, licence, card and account numbers) in files.
    Scan(ScanArgs),
    /// Run the TLS gateway (`--config FILE`), or `check` a configuration.
    Proxy(crate::proxycmd::ProxyArgs),
    /// Certificates for the gateway (`dev`: a self-signed one for development).
    #[command(subcommand)]
    Cert(crate::certcmd::CertCommand),
    /// Evidence for 201 CMR 17.04 read from the vaults' real state (no
    /// passphrase needed), for the firm's WISP.
    #[command(subcommand)]
    Compliance(crate::compliancecmd::ComplianceCommand),
    /// Write a man page for pivault and each of its commands to DIR.
    Man(ManArgs),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    Completions(CompletionsArgs),
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Directory to write the pages to (made if missing): pivault.1,
    /// pivault-keys.1, pivault-keys-add-passphrase.1, ...
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// Shells `pivault completions` writes for.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    /// bash (install as /usr/share/bash-completion/completions/pivault).
    Bash,
    /// zsh (install as a `_pivault` file on `$fpath`).
    Zsh,
    /// fish (install as ~/.config/fish/completions/pivault.fish).
    Fish,
}

/// How log lines are written.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: timestamp, level, fields, message.
    Json,
}

/// Cipher suite choices at init.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Cipher {
    /// AES-256-GCM (default where the CPU has AES instructions).
    AesGcm,
    /// XChaCha20-Poly1305 (default elsewhere).
    Xchacha,
}

/// Where the current passphrase comes from.
#[derive(Args, Debug, Clone, Default)]
pub struct Unlock {
    /// Read the passphrase from FILE (one trailing newline is ignored).
    /// Otherwise PIVAULT_PASSPHRASE_FILE, PIVAULT_PASSPHRASE, then the terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Unseal with the recovery key in FILE instead of a passphrase
    /// (PIVAULT_RECOVERY_KEY holds one when no passphrase file is given).
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_file")]
    pub recovery_key_file: Option<PathBuf>,
    /// Unseal with share files of a share slot (repeat for each share).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["passphrase_file", "recovery_key_file"])]
    pub share_file: Vec<PathBuf>,
}

/// Where a new passphrase comes from.
#[derive(Args, Debug, Clone, Default)]
pub struct NewSecret {
    /// Read the new passphrase from FILE. Otherwise PIVAULT_NEW_PASSPHRASE_FILE,
    /// PIVAULT_NEW_PASSPHRASE, then the terminal (asked twice).
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
    /// FOR TEST SUITES ONLY: use trivially weak Argon2id parameters
    /// (64 KiB, t=1). Recorded in the slot and warned about on every unseal.
    #[arg(long)]
    pub insecure_test_kdf: bool,
    /// Accept a new passphrase below the strength rule (shorter than 12
    /// characters, the vault or user name, or under 10^10 estimated
    /// guesses). Recorded in the slot, warned about on every unseal and
    /// listed by `keys list` and the compliance report.
    #[arg(long)]
    pub allow_weak_passphrase: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Vault directory (created if missing; must be empty if it exists).
    pub vault: PathBuf,
    /// Cipher suite for contents.
    #[arg(long, value_enum)]
    pub cipher: Option<Cipher>,
    /// Read the new vault's passphrase from FILE. Otherwise
    /// PIVAULT_PASSPHRASE_FILE, PIVAULT_PASSPHRASE, then the terminal (asked twice).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// FOR TEST SUITES ONLY: use trivially weak Argon2id parameters
    /// (64 KiB, t=1). Recorded in the keystore and warned about on every unseal.
    #[arg(long)]
    pub insecure_test_kdf: bool,
    /// Accept a passphrase below the strength rule (shorter than 12
    /// characters, the vault or user name, or under 10^10 estimated
    /// guesses). Recorded in the slot, warned about on every unseal and
    /// listed by `keys list` and the compliance report.
    #[arg(long)]
    pub allow_weak_passphrase: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Plaintext directory to copy from.
    pub src_dir: PathBuf,
    /// Vault to copy into.
    pub vault: PathBuf,
    #[command(flatten)]
    pub unlock: Unlock,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Vault to read.
    pub vault: PathBuf,
    /// Destination: a new or empty directory.
    pub dest_dir: PathBuf,
    #[command(flatten)]
    pub unlock: Unlock,
    /// Restore setuid, setgid and sticky bits. Off by default: modes in the
    /// vault directory are not authenticated, so anyone who can write it
    /// could otherwise make an exported file setuid
    #[arg(long)]
    pub keep_special_bits: bool,
}

#[derive(Args, Debug)]
pub struct FsckArgs {
    /// Vault to check.
    pub vault: PathBuf,
    #[command(flatten)]
    pub unlock: Unlock,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// First undo the writes a killed or crashed mount left half done
    /// (files it was growing: each is cut back to its size before that
    /// write, which was never acknowledged), then check.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Print the audit log (one line per record, or JSON Lines).
    Show {
        /// Vault directory.
        vault: PathBuf,
        /// Print the records as stored (JSON Lines).
        #[arg(long)]
        json: bool,
        /// Only records at or after DATE (2026-01-31 or an RFC 3339 time).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
    /// Check the log's hash chain, signatures and tail anchor; name the
    /// first record that was edited, deleted, inserted or reordered. With
    /// a secret (--passphrase-file, --recovery-key-file, --share-file or
    /// --unseal) it also checks the keystore's MAC, which vouches for the
    /// verifying key and the tail anchor; without one they are taken on
    /// trust, and the output says so.
    Verify {
        /// Vault directory.
        vault: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Unseal to check the keystore's MAC, with the passphrase from
        /// PIVAULT_PASSPHRASE_FILE, PIVAULT_PASSPHRASE or the terminal
        /// (implied by the options below).
        #[arg(long)]
        unseal: bool,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Send the records not yet delivered to the audit server (the one
    /// --audit-remote or /etc/pivault/audit.toml names), in order; the
    /// vault's `audit.shipped` records how far delivery got.
    Ship {
        /// Vault directory.
        vault: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ReencryptArgs {
    /// Vault directory (must not be mounted).
    pub vault: PathBuf,
    /// Afterwards remove every older data key from the keyring (refused
    /// while any file still uses one).
    #[arg(long)]
    pub retire: bool,
    #[command(flatten)]
    pub unlock: Unlock,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List key slots and data-key versions (needs no passphrase).
    List {
        /// Vault directory.
        vault: PathBuf,
        /// Print JSON (fields `slots` and `data_keys`).
        #[arg(long)]
        json: bool,
    },
    /// Add a passphrase slot (unsealing with an existing one).
    AddPassphrase {
        /// Vault directory.
        vault: PathBuf,
        /// The new slot may only unseal and change its own passphrase (not
        /// add, remove or change other slots, set policies, rotate).
        #[arg(long)]
        restricted: bool,
        #[command(flatten)]
        unlock: Unlock,
        #[command(flatten)]
        new: NewSecret,
    },
    /// Change a slot's passphrase (default: the slot that unseals).
    ChangePassphrase {
        /// Vault directory.
        vault: PathBuf,
        /// Slot to change.
        #[arg(long)]
        slot: Option<u32>,
        #[command(flatten)]
        unlock: Unlock,
        #[command(flatten)]
        new: NewSecret,
    },
    /// Remove a slot (never the last one).
    Remove {
        /// Vault directory.
        vault: PathBuf,
        /// Slot to remove.
        #[arg(long)]
        slot: u32,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Copy the keystore to FILE (a new file). Keep it off the laptop.
    Backup {
        /// Vault directory.
        vault: PathBuf,
        /// Where to write the copy.
        file: PathBuf,
    },
    /// Add a recovery slot: prints a random recovery key once (the only
    /// line on stdout). Store it offline; it unseals like a passphrase.
    AddRecovery {
        /// Vault directory.
        vault: PathBuf,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Add a share slot: a random secret split into N share files in
    /// DIR, any K of which unseal (K-1 reveal nothing).
    AddShares {
        /// Vault directory.
        vault: PathBuf,
        /// Shares needed to unseal (K, at least 2).
        #[arg(long, value_name = "K")]
        threshold: u8,
        /// Shares to make (N, at most 255).
        #[arg(long, value_name = "N")]
        shares: u8,
        /// Directory for the share files (created if missing; files are
        /// never overwritten). Hand each file to a different person.
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Add an escrow slot: the vault opens with the organisation's age
    /// identity (X25519), so IT can recover it without the user.
    AddEscrow {
        /// Vault directory.
        vault: PathBuf,
        /// The organisation's age recipient (age1...).
        #[arg(long, value_name = "AGE1...")]
        recipient: String,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Recover a vault with the escrow identity and set a new passphrase
    /// (of the lowest passphrase slot, or --slot N; one is added if none).
    Recover {
        /// Vault directory.
        vault: PathBuf,
        /// The age identity file (AGE-SECRET-KEY-1...).
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
        /// Passphrase slot to give the new passphrase.
        #[arg(long)]
        slot: Option<u32>,
        #[command(flatten)]
        new: NewSecret,
    },
    /// Restrict a slot: which OS users may unseal with it, until when, and
    /// after how many failed unseals in a row it locks (with exponential
    /// back-off before that). Options not given stay as they are.
    Policy {
        /// Vault directory.
        vault: PathBuf,
        /// The slot to restrict.
        #[arg(long)]
        slot: u32,
        /// OS user names allowed (comma-separated; empty: anyone).
        #[arg(long, value_delimiter = ',', value_name = "USER,...")]
        users: Option<Vec<String>>,
        /// Last date the slot unseals (2026-12-31, or an RFC 3339 time;
        /// `never` removes the limit).
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// Failed unseals in a row before the slot locks (0 removes the limit).
        #[arg(long, value_name = "N")]
        max_failures: Option<u32>,
        /// Remove every restriction from the slot.
        #[arg(long, conflicts_with_all = ["users", "expires", "max_failures"])]
        clear: bool,
        /// Keep (or make) the slot an admin slot; without it, a slot given
        /// a policy becomes restricted (it may only unseal and change its
        /// own passphrase).
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Unlock a slot locked after failed unseals (unseal with another slot).
    #[command(name = "unlock")]
    UnlockSlot {
        /// Vault directory.
        vault: PathBuf,
        /// The locked slot.
        #[arg(long)]
        slot: u32,
        #[command(flatten)]
        unlock: Unlock,
    },
    /// Add a new data-key version; new and rewritten files use it
    /// (`pivault reencrypt` moves the rest).
    Rotate {
        /// Vault directory.
        vault: PathBuf,
        #[command(flatten)]
        unlock: Unlock,
    },
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// Vault directory.
    pub vault: PathBuf,
    /// Where the plaintext appears: an existing empty directory outside the vault.
    pub mountpoint: PathBuf,
    /// Return once the mount is ready and keep serving it in the background.
    #[arg(long)]
    pub daemon: bool,
    /// Mount read-only (writes fail with "Read-only file system").
    #[arg(long)]
    pub read_only: bool,
    /// Unmount (and drop the keys) after MINUTES without any access
    /// (fractions allowed, e.g. 0.5).
    #[arg(long, value_name = "MINUTES", value_parser = parse_minutes)]
    pub idle_seal: Option<f64>,
    /// Let other users enter the mount (file modes still apply). A user
    /// other than root needs `user_allow_other` in /etc/fuse.conf.
    #[arg(long)]
    pub allow_other: bool,
    /// FUSE request threads.
    #[arg(long, default_value_t = 4, hide = true)]
    pub threads: usize,
    /// Send every write to the daemon at once instead of letting the
    /// kernel cache and batch them (FUSE writeback cache).
    #[arg(long, hide = true)]
    pub no_writeback_cache: bool,
    #[command(flatten)]
    pub unlock: Unlock,
}

fn parse_minutes(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if m > 0.0 && m.is_finite() && m <= 1e7 => Ok(m),
        _ => Err(format!("{s:?} is not a positive number of minutes")),
    }
}

#[derive(Args, Debug)]
pub struct UnmountArgs {
    /// The mountpoint of a mounted vault.
    pub mountpoint: PathBuf,
    /// Detach even if files are open (they keep working until closed).
    #[arg(long)]
    pub lazy: bool,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to scan (.gitignore files are not honoured).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print JSON Lines: one finding per line ("type":"finding", path,
    /// line, kind, masked, confidence, name_nearby; "source":"ocr" and
    /// ocr_confidence for text read from an image), then one line per
    /// file not fully scanned ("type":"status", path, "status":"partial"
    /// or "skipped", reason).
    #[arg(long)]
    pub json: bool,
    /// Move each file with findings into this directory (a mounted vault),
    /// keeping its path relative to the scanned root; the original is
    /// overwritten with zeros and removed once the copy is verified.
    #[arg(long, value_name = "MOUNTPOINT")]
    pub move_into: Option<PathBuf>,
    /// Skip paths matching GLOB (gitignore syntax, relative to each PATH;
    /// repeatable), e.g. --exclude '*.log' --exclude node_modules/.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Worker threads (default: one per CPU).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
    /// Stop reading any one file after SECS seconds; what was read is
    /// scanned and the file reported as partial.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub file_timeout: u64,
    /// Do not read text in images (PNG, JPEG, TIFF files and PDF pages
    /// that are only an image) with Tesseract, even where it is installed;
    /// they are reported as not scanned.
    #[arg(long)]
    pub no_ocr: bool,
}
