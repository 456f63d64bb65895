//! The strength rule for new passphrases (init, add, change, recover).
//!
//! A passphrase slot is only as strong as its passphrase times its
//! Argon2id cost: anyone with a copy of the keystore guesses offline, with
//! no online limit (docs/THREAT-MODEL.md §6). So a new passphrase is
//! estimated with zxcvbn (Dropbox's estimator, which models what crackers
//! try first: dictionaries, common passwords, names, keyboard walks, dates,
//! repeats, l33t substitutions) and refused when any of these holds:
//!
//! - it is shorter than [`MIN_CHARS`] (12) characters;
//! - it equals the vault's directory name or the OS user name (ignoring
//!   case and surrounding blanks);
//! - zxcvbn estimates fewer than 10^[`MIN_GUESSES_LOG10`] (10^10) guesses
//!   to find it. The vault name, the OS user name and "pivault" are given
//!   to zxcvbn as guessable words, so `myvault2024` counts as weak.
//!
//! Why 10^10: at pivault's default cost (Argon2id, 256 MiB, t=3, p=4) a
//! guess moves roughly 2-3 GB through memory, so even a large GPU (1 TB/s,
//! 24 GB) does at most a few hundred guesses a second (in practice fewer);
//! 10^10 guesses then take most of a year on one GPU, but only hours on a
//! farm of a thousand. It is a floor against casual cracking of a lost
//! laptop or backup, not protection against a funded attacker: four or
//! more random words (zxcvbn: about 10^14 and up, years for that farm) are
//! what the refusal asks people to choose.
//! The threshold does not scale with a slot's Argon2id parameters: pivault
//! writes either the default or, with `--insecure-test-kdf`, test-only
//! parameters, which are flagged on their own.
//!
//! A passphrase below the rule is accepted only when the caller asks for
//! it (`--allow-weak-passphrase`): the slot then records `"weak": true`,
//! which is covered by the keystore MAC (clearing it makes the next unseal
//! fail), listed by `pivault keys list` and the compliance report, and
//! warned about on every unseal. The keystore records the flag itself
//! from the same rule whenever it stores a passphrase, so a slot is never
//! written with a flag that does not match its passphrase.
//!
//! zxcvbn only looks at the first 100 characters, and works on a copy of
//! the passphrase as a `String` (its internal copies are not zeroized; the
//! one made here is).

use crate::keystore::Keystore;
use crate::slot::Passphrase;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The fewest characters a new passphrase may have.
pub const MIN_CHARS: usize = 12;

/// The fewest estimated guesses (as a power of ten) a new passphrase needs.
pub const MIN_GUESSES_LOG10: f64 = 10.0;

/// What the rule found about a passphrase. Holds no part of the secret.
#[derive(Debug, Clone)]
pub struct Strength {
    chars: usize,
    guesses_log10: f64,
    equals: Option<&'static str>,
    warning: Option<String>,
    suggestions: Vec<String>,
}

impl Strength {
    /// Estimates `pass` as a passphrase of the vault in directory `vault`
    /// (which may not exist yet), for the OS user running this process.
    pub fn estimate(pass: &Passphrase, vault: &Path) -> Strength {
        let user = crate::audit::os_user().0;
        Self::estimate_for(pass, vault_name(vault).as_deref(), Some(&user))
    }

    fn estimate_for(pass: &Passphrase, vault: Option<&str>, user: Option<&str>) -> Strength {
        let text = Zeroizing::new(String::from_utf8_lossy(pass.expose()).into_owned());
        let same = |name: Option<&str>| {
            name.is_some_and(|n| !n.trim().is_empty() && n.trim().eq_ignore_ascii_case(text.trim()))
        };
        let equals = if same(vault) {
            Some("the vault's name")
        } else if same(user) {
            Some("the OS user name")
        } else {
            None
        };
        let mut inputs: Vec<&str> = vec!["pivault", "vault"];
        inputs.extend(vault.into_iter().chain(user));
        let e = zxcvbn::zxcvbn(&text, &inputs);
        let (warning, suggestions) = match e.feedback() {
            Some(f) => (
                f.warning().map(|w| w.to_string()),
                f.suggestions().iter().map(|s| s.to_string()).collect(),
            ),
            None => (None, Vec::new()),
        };
        Strength {
            chars: text.chars().count(),
            guesses_log10: e.guesses_log10(),
            equals,
            warning,
            suggestions,
        }
    }

    /// True when the passphrase is below the rule.
    pub fn is_weak(&self) -> bool {
        !self.problems().is_empty()
    }

    /// zxcvbn's estimate of the guesses needed, as a power of ten.
    pub fn guesses_log10(&self) -> f64 {
        self.guesses_log10
    }

    /// What is wrong, one phrase each (empty when the passphrase passes).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.chars < MIN_CHARS {
            out.push(format!(
                "it has {} characters (at least {MIN_CHARS} are needed)",
                self.chars
            ));
        }
        if let Some(what) = self.equals {
            out.push(format!("it is {what}"));
        }
        if self.guesses_log10 < MIN_GUESSES_LOG10 {
            out.push(format!(
                "it would be found in about 10^{:.0} guesses (at least 10^{MIN_GUESSES_LOG10:.0} are needed)",
                self.guesses_log10.max(0.0).floor()
            ));
        }
        out
    }

    /// The refusal, or `Ok(())` when the passphrase passes the rule.
    pub fn require_strong(&self) -> Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        let mut feedback = String::new();
        if let Some(w) = &self.warning {
            feedback.push_str(&format!(" zxcvbn: \"{w}\""));
        }
        if !self.suggestions.is_empty() {
            feedback.push_str(&format!(" Suggestions: {}", self.suggestions.join(" ")));
        }
        Err(Error::WeakPassphrase {
            problems: problems.join("; "),
            feedback,
        })
    }
}

/// Checks a new passphrase for the vault in `vault` against the rule:
/// `Ok(true)` when it is weak but `allow_weak` accepts it (the slot will
/// record it), `Ok(false)` when it passes, else [`Error::WeakPassphrase`].
/// Call it before anything is written.
pub fn check_new_passphrase(pass: &Passphrase, vault: &Path, allow_weak: bool) -> Result<bool> {
    let s = Strength::estimate(pass, vault);
    match s.require_strong() {
        Ok(()) => Ok(false),
        Err(_) if allow_weak => Ok(true),
        Err(e) => Err(e),
    }
}

/// The name a person would call the vault: its directory's last component
/// (resolved for `.` and the like).
fn vault_name(vault: &Path) -> Option<String> {
    let named = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
    };
    named(vault).or_else(|| {
        let p = if vault.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            vault.to_path_buf()
        };
        std::fs::canonicalize(p).ok().as_deref().and_then(named)
    })
}

impl Keystore {
    /// The directory the keystore is in (the vault).
    fn vault_dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// Whether a slot storing `pass` records `"weak": true`.
    pub(crate) fn is_weak_passphrase(&self, pass: &Passphrase) -> bool {
        Strength::estimate(pass, self.vault_dir()).is_weak()
    }

    /// Passphrase slots whose passphrase was accepted below the strength
    /// rule. Trust it after an unseal (the MAC was checked); before, it is
    /// what the file says.
    pub fn weak_passphrase_slots(&self) -> Vec<u32> {
        self.body
            .slots
            .iter()
            .filter(|s| s.weak)
            .map(|s| s.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(p: &str) -> Strength {
        Strength::estimate_for(
            &Passphrase::new(p.as_bytes().to_vec()),
            Some("taxes-2024"),
            Some("alice"),
        )
    }

    #[test]
    fn common_and_short_passphrases_are_weak() {
        for p in [
            "1234",
            "password",
            "Password123!",
            "qwertyuiopasdf",
            "abcdefghijk",
        ] {
            assert!(est(p).is_weak(), "{p} passed");
        }
        assert!(est("1234").require_strong().is_err());
    }

    #[test]
    fn eleven_random_characters_are_too_short_whatever_the_estimate() {
        let s = est("q7#Vx9!mZ2p");
        assert_eq!(s.chars, 11);
        assert!(
            s.problems()[0].contains("11 characters"),
            "{:?}",
            s.problems()
        );
    }

    #[test]
    fn vault_and_user_names_are_refused() {
        let s = est("Taxes-2024");
        assert!(s.problems().iter().any(|p| p.contains("the vault's name")));
        let s = Strength::estimate_for(
            &Passphrase::new(b"alexandria-librarian".to_vec()),
            None,
            Some("alexandria-librarian"),
        );
        assert!(s.problems().iter().any(|p| p.contains("the OS user name")));
        // The names count as guessable words for zxcvbn as well.
        assert!(est("taxes-2024taxes-2024").is_weak());
    }

    #[test]
    fn random_words_pass() {
        for p in [
            "marble quantum orchid tundra",
            "velvet-cactus-harbor-spline-gravel",
            "plinth saffron ozone wicket",
        ] {
            let s = est(p);
            assert!(!s.is_weak(), "{p}: {:?}", s.problems());
            assert!(s.require_strong().is_ok());
        }
    }

    #[test]
    fn refusal_quotes_the_estimator_and_says_what_to_do() {
        let e = est("password").require_strong().unwrap_err().to_string();
        assert!(e.contains("8 characters"), "{e}");
        assert!(e.contains("zxcvbn: \""), "{e}");
        assert!(e.contains("four or more random words"), "{e}");
        assert!(e.contains("--allow-weak-passphrase"), "{e}");
        // The secret itself is never part of the message.
        let e = est("zq9zq9").require_strong().unwrap_err().to_string();
        assert!(!e.contains("zq9"), "{e}");
    }

    #[test]
    fn allow_weak_turns_a_refusal_into_a_flag() {
        let d = tempfile::tempdir().unwrap();
        let weak = Passphrase::new(b"1234".to_vec());
        assert!(check_new_passphrase(&weak, d.path(), false).is_err());
        assert!(check_new_passphrase(&weak, d.path(), true).unwrap());
        let strong = Passphrase::new(b"marble quantum orchid tundra".to_vec());
        assert!(!check_new_passphrase(&strong, d.path(), false).unwrap());
    }

    #[test]
    fn vault_name_of_dot_is_the_directory() {
        assert_eq!(
            vault_name(Path::new("/a/b/vault")).as_deref(),
            Some("vault")
        );
        assert!(vault_name(Path::new(".")).is_some());
    }
}

#[cfg(test)]
mod slot_tests {
    use super::*;
    use crate::KdfParams;
    use vault_core::Suite;

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.as_bytes().to_vec())
    }

    /// The attack: someone without the keys clears the flag so the weak
    /// slot stops being warned about and reported.
    #[test]
    fn clearing_the_weak_flag_fails_the_mac() {
        let d = tempfile::tempdir().unwrap();
        let kdf = KdfParams::insecure_test();
        Keystore::create(d.path(), Suite::Aes256Gcm, &pass("1234"), kdf).unwrap();
        let ks = Keystore::load(d.path()).unwrap();
        assert_eq!(ks.weak_passphrase_slots(), vec![0]);
        assert!(ks.slots()[0].weak_passphrase);
        let path = Keystore::path_in(d.path());
        let text = std::fs::read_to_string(&path).unwrap();
        let edited: String = text
            .split_inclusive('\n')
            .filter(|l| l.trim() != "\"weak\": true,")
            .collect();
        assert_ne!(edited, text);
        let body = &edited[..edited.len() - 72];
        let sum =
            hex::encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref());
        let forged = format!("{body}sha256 {sum}\n");
        let ks = Keystore::parse(path, forged.as_bytes()).unwrap();
        assert!(ks.weak_passphrase_slots().is_empty());
        assert!(matches!(
            ks.unseal_passphrase(&pass("1234"), None),
            Err(Error::Corrupt { .. })
        ));
    }

    /// Keystores from before the rule have no `weak` member: not weak.
    #[test]
    fn a_slot_without_the_field_reads_as_not_weak() {
        let d = tempfile::tempdir().unwrap();
        let kdf = KdfParams::insecure_test();
        let strong = pass("marble quantum orchid tundra");
        let (mut ks, _) = Keystore::create(d.path(), Suite::Aes256Gcm, &strong, kdf).unwrap();
        let text = std::fs::read_to_string(Keystore::path_in(d.path())).unwrap();
        assert!(!text.contains("\"weak\""), "{text}");
        assert!(!Keystore::load(d.path()).unwrap().slots()[0].weak_passphrase);
        // A weak passphrase added later is flagged; changing it to a
        // strong one clears the flag.
        let mut u = ks.unseal_passphrase(&strong, None).unwrap();
        let id = ks
            .add_passphrase(&mut u, &pass("password"), kdf, crate::Role::Admin)
            .unwrap();
        assert_eq!(ks.weak_passphrase_slots(), vec![id]);
        ks.change_passphrase(&mut u, id, &pass("plinth saffron ozone wicket"), kdf)
            .unwrap();
        assert!(Keystore::load(d.path())
            .unwrap()
            .weak_passphrase_slots()
            .is_empty());
    }
}
