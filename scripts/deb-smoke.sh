#!/usr/bin/env bash
# Installs the .deb that scripts/build-deb.sh made on this machine and
# checks the installed files work together: the binary, its man
# page, its units, and a mount made by the installed binary (a file
# written through it reads back, and only ciphertext reaches the vault).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
deb=$(ls -t target/debian/pivault_*.deb | head -1)
echo "deb-smoke: installing $deb"
$SUDO apt-get install -y -qq "./$deb" >/dev/null
dpkg -s pivault | grep -q '^Status: install ok installed'

fail() { echo "deb-smoke: FAILED: $*" >&2; exit 1; }
[ "$(command -v pivault)" = /usr/bin/pivault ] || fail "pivault is not /usr/bin/pivault"
/usr/bin/pivault --version | grep -q '^pivault ' || fail "pivault --version"
man -w pivault >/dev/null || fail "man -w pivault"
man -w pivault-keys-rotate >/dev/null || fail "man -w pivault-keys-rotate"
[ -f /usr/share/bash-completion/completions/pivault ] || fail "bash completion"
[ -f /lib/systemd/system/pivault-proxy.service ] || fail "pivault-proxy.service"
[ -f /usr/lib/systemd/user/pivault-mount@.service ] || fail "pivault-mount@.service"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The installed units name the installed binary and pages.
    out=$(systemd-analyze verify /lib/systemd/system/pivault-proxy.service /lib/systemd/system/pivault-scan.timer 2>&1) || fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify: $out"
fi

t=$(mktemp -d)
trap '/usr/bin/pivault unmount "$t/m" >/dev/null 2>&1 || true; rm -rf "$t"' EXIT
mkdir "$t/m"
echo "a passphrase for the package check only" > "$t/pw"
/usr/bin/pivault init --insecure-test-kdf --passphrase-file "$t/pw" "$t/v" >/dev/null
/usr/bin/pivault mount --daemon --passphrase-file "$t/pw" "$t/v" "$t/m"
printf 'Jane Roe 078-05-1120' > "$t/m/record.txt"
[ "$(cat "$t/m/record.txt")" = "Jane Roe 078-05-1120" ] || fail "read back through the mount"
/usr/bin/pivault unmount "$t/m"
if grep -rq "078-05-1120" "$t/v"; then fail "plaintext in the vault directory"; fi
/usr/bin/pivault fsck --passphrase-file "$t/pw" "$t/v" >/dev/null || fail "fsck of the vault"
echo "deb-smoke: ok ($deb)"
