#!/usr/bin/env bash
# Builds and installs pivault on Debian 12: the Debian packages it needs,
# Rust from rustup when no cargo is found, then `cargo install`.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# build-essential: the C compiler ring needs; fuse3: fusermount3 for `pivault mount`.
$SUDO apt-get install -y -qq build-essential pkg-config fuse3 curl ca-certificates >/dev/null

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi

cargo install --locked --path .
echo "Installed: $(command -v pivault || echo "$HOME/.cargo/bin/pivault")"
