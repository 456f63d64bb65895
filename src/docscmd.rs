//! `pivault man` and `pivault completions`: the manual pages and the
//! shell completion scripts, generated from the same clap definitions the
//! parser uses, so they cannot drift from the binary.

use crate::cli::{Cli, CompletionsArgs, ManArgs, Shell};
use crate::Outcome;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

pub fn man(a: ManArgs) -> Result<Outcome> {
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let n = write_pages(&cmd, "pivault", "pivault", &a.out)?;
    eprintln!("Wrote {n} man pages to {}", a.out.display());
    Ok(Outcome::Ok)
}

/// Writes the page of `cmd` as `<page>.1` (shown as `invocation`), then
/// one for each subcommand; returns how many.
fn write_pages(cmd: &clap::Command, page: &str, invocation: &str, out: &Path) -> Result<usize> {
    let shown = cmd
        .clone()
        .name(page.to_string())
        .bin_name(invocation.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(shown).render(&mut buf)?;
    let path = out.join(format!("{page}.1"));
    std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    let mut n = 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        n += write_pages(
            sub,
            &format!("{page}-{}", sub.get_name()),
            &format!("{invocation} {}", sub.get_name()),
            out,
        )?;
    }
    Ok(n)
}

pub fn completions(a: CompletionsArgs) -> Result<Outcome> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "pivault",
        &mut std::io::stdout(),
    );
    Ok(Outcome::Ok)
}
