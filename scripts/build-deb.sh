#!/usr/bin/env bash
# Builds target/debian/pivault_VERSION_ARCH.deb: the release binary, the
# man pages and shell completions it generates (so they always match it),
# the systemd units and the docs (assets in Cargo.toml,
# [package.metadata.deb]). Needs cargo-deb: `cargo install --locked cargo-deb`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null 2>&1 || {
    echo "build-deb: cargo-deb is not installed; run: cargo install --locked cargo-deb" >&2
    exit 1
}
cargo build --release --locked
bin=target/release/pivault
rm -rf target/deb
mkdir -p target/deb/man target/deb/completions
"$bin" man --out target/deb/man
gzip -9n target/deb/man/*.1
"$bin" completions bash > target/deb/completions/pivault
"$bin" completions zsh > target/deb/completions/_pivault
"$bin" completions fish > target/deb/completions/pivault.fish
cargo deb --no-build --locked "$@"
