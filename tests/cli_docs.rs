//! `pivault man` and `pivault completions` through the binary: a man page
//! for every command `--help` lists (so the pages cannot lag the parser),
//! pages that `man` renders, and completion scripts that their shells
//! accept and that know every command.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

/// The command names under "Commands:" in `pivault [SUB] --help`.
fn commands(sub: &[&str]) -> Vec<String> {
    let out = ok(run(pv().args(sub).arg("--help")));
    let mut names = Vec::new();
    let mut inside = false;
    for line in out.stdout.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                break;
            }
            // Continuation lines of a long description are indented more.
            let t = line.trim_start();
            if line.len() - t.len() == 2 {
                let name = t.split_whitespace().next().unwrap().to_string();
                if name != "help" {
                    names.push(name);
                }
            }
        }
    }
    assert!(!names.is_empty(), "no commands in {sub:?} --help");
    names
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn man_writes_a_page_for_every_command_the_parser_knows() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("man1");
    let r = ok(run(pv().arg("man").arg("--out").arg(&out)));
    let mut want: BTreeSet<String> = BTreeSet::from(["pivault".to_string()]);
    for c in commands(&[]) {
        want.insert(format!("pivault-{c}"));
    }
    for group in ["keys", "audit", "cert", "compliance"] {
        for c in commands(&[group]) {
            want.insert(format!("pivault-{group}-{c}"));
        }
    }
    let got: BTreeSet<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".1")
                .to_string()
        })
        .collect();
    for page in &want {
        assert!(got.contains(page), "no man page {page}.1 (have {got:?})");
    }
    assert_contains(&r.stderr, &format!("Wrote {} man pages", got.len()));
    let page = fs::read_to_string(out.join("pivault-keys-rotate.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("pivault\\-keys\\-rotate") || page.contains("pivault-keys-rotate"));

    if !have("man") {
        skip("man_writes_a_page_for_every_command_the_parser_knows: `man` is not installed; the pages were not rendered");
        return;
    }
    let shown = Command::new("man")
        .args(["-l", "-Tutf8"])
        .arg(out.join("pivault-keys-rotate.1"))
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    // Undo the overstrike (bold is "X\bX", underline "_\bX").
    let raw: Vec<char> = String::from_utf8_lossy(&shown.stdout).chars().collect();
    let mut text = String::new();
    let mut i = 0;
    while i < raw.len() {
        if raw.get(i + 1) == Some(&'\u{8}') {
            i += 2;
            continue;
        }
        text.push(raw[i]);
        i += 1;
    }
    // Justified lines have runs of spaces.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("SYNOPSIS"), "{text}");
    assert!(text.contains("pivault keys rotate"), "{text}");
    assert!(text.contains("data-key version"), "{text}");
}

#[test]
fn completions_know_every_command_and_parse_in_their_shells() {
    let bash = ok(pv_run(["completions", "bash"])).stdout;
    for c in commands(&[]) {
        assert!(bash.contains(&c), "bash completion lacks {c}");
    }
    for c in commands(&["keys"]) {
        assert!(bash.contains(&c), "bash completion lacks keys {c}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("pivault.bash");
    fs::write(&script, &bash).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");

    let zsh = ok(pv_run(["completions", "zsh"])).stdout;
    assert!(
        zsh.starts_with("#compdef pivault"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    assert!(zsh.contains("add-passphrase"));
    let fish = ok(pv_run(["completions", "fish"])).stdout;
    assert!(fish.contains("complete -c pivault"));
    assert!(fish.contains("add-passphrase"));
    if have("fish") {
        let p = tmp.path().join("pivault.fish");
        fs::write(&p, &fish).unwrap();
        let r = Command::new("fish")
            .arg("--no-execute")
            .arg(&p)
            .output()
            .unwrap();
        assert!(r.status.success(), "{r:?}");
    } else {
        skip("completions_know_every_command_and_parse_in_their_shells: fish is not installed; its script was not parsed");
    }
    // An unknown shell is refused, naming the choices.
    let bad = failed(pv_run(["completions", "tcsh"]));
    assert_contains(&bad.stderr, "bash");
}
