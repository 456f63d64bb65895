#!/usr/bin/env bash
# proxy_testssl.sh - grade pivault's TLS gateway (`pivault proxy`, mode "http",
# hsts = true) with testssl.sh's rating (SSL Labs' SSL Server Rating Guide).
#
# Checks the claim in docs/PROXY.md ("Grading with testssl") by running the
# real thing instead of applying the rating rules by hand. The rating needs
# testssl.sh 3.2 or newer (Debian's 3.0.x has none).
#
# What it does, all on 127.0.0.1, in a temp dir (mktemp -d) removed on exit:
#   1. makes a throwaway local CA and a server certificate for localhost /
#      127.0.0.1 signed by it (ECDSA P-256, SHA-256, SAN DNS:localhost,
#      IP:127.0.0.1, serverAuth, 90 days: under the 398-day limit);
#   2. starts a tiny plaintext backend (python3 -m http.server);
#   3. writes a pivault config with one [[listener]] mode = "http",
#      hsts = true, in front of that backend, and starts
#      `$PIVAULT_BIN proxy --config FILE`;
#   4. runs a full default testssl.sh scan (protocols, cipher categories,
#      server preferences, forward secrecy, server defaults, headers,
#      vulnerabilities, client simulation, rating) against
#      https://localhost:PORT with the local CA added to its trust stores
#      (--add-ca), so the certificate is trusted as a CA-issued one would be;
#   5. prints the rating block (sub-scores, "Overall Grade", any "Grade cap
#      reasons" and "Grade warning") and every MEDIUM/HIGH/CRITICAL finding,
#      and keeps testssl's full log (and JSON) outside the temp dir.
#
# Run (from anywhere; needs bash, openssl, python3, and testssl.sh >= 3.2):
#   PIVAULT_BIN=$PWD/target/release/pivault \
#   TESTSSL=/path/to/testssl.sh-3.2/testssl.sh bash benches/proxy_testssl.sh
# Env:
#   PIVAULT_BIN  the pivault binary (default: pivault on PATH)
#   TESTSSL      testssl.sh (default: testssl.sh on PATH)
#   OUT          where to keep testssl's log; the JSON goes to OUT.json
#                (default: ${TMPDIR:-/tmp}/proxy_testssl.YYYYMMDD-HHMMSS.log)
#   TESTSSL_ARGS extra arguments for testssl.sh (word-split), e.g. "--fast"
# Exit status: 0 when the grade is A+, 1 when it is anything else, 2 on a
# setup error.
set -euo pipefail

PIVAULT_BIN=${PIVAULT_BIN:-pivault}
TESTSSL=${TESTSSL:-testssl.sh}
OUT=${OUT:-${TMPDIR:-/tmp}/proxy_testssl.$(date +%Y%m%d-%H%M%S).log}
read -r -a EXTRA_ARGS <<<"${TESTSSL_ARGS:-}"

log() { printf '[proxy_testssl] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

command -v "$PIVAULT_BIN" >/dev/null || die "PIVAULT_BIN=$PIVAULT_BIN not found"
command -v "$TESTSSL" >/dev/null || die "TESTSSL=$TESTSSL not found (needs testssl.sh >= 3.2)"
command -v openssl >/dev/null || die "openssl not found"
command -v python3 >/dev/null || die "python3 not found"
# testssl.sh stops at once without a resolver tool, even for --ip scans.
command -v dig >/dev/null || command -v host >/dev/null || command -v drill >/dev/null ||
  command -v nslookup >/dev/null || die "testssl.sh needs dig, host, drill or nslookup (apt-get install dnsutils)"

T=$(mktemp -d "${TMPDIR:-/tmp}/proxy-testssl.XXXXXX")
PIDS=()
cleanup() {
  local rc=$? i
  set +e
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null
    wait "${PIDS[i]}" 2>/dev/null
  done
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_port() { # wait_port PORT PID SECS
  local port=$1 pid=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ----------------------------------------------------------------- certificates
log "temp dir $T"
mkdir -p "$T/www"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout "$T/ca.key" -out "$T/ca.pem" -days 365 -subj "/CN=pivault testssl throwaway CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$T/openssl.err" ||
  { cat "$T/openssl.err" >&2; die "CA creation failed"; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout "$T/server.key" -out "$T/server.csr" -subj "/CN=localhost" 2>"$T/openssl.err" ||
  { cat "$T/openssl.err" >&2; die "server key/CSR creation failed"; }
cat >"$T/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
  -sha256 -days 90 -extfile "$T/server.ext" -out "$T/server.pem" 2>"$T/openssl.err" ||
  { cat "$T/openssl.err" >&2; die "server certificate signing failed"; }

# ----------------------------------------------------------------- backend + gateway
P_BACKEND=$(free_port)
P_GW=$(free_port)
while [[ $P_GW == "$P_BACKEND" ]]; do P_GW=$(free_port); done
echo '<!doctype html><title>ok</title>ok' >"$T/www/index.html"

python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$P_BACKEND" >"$T/backend.log" 2>&1 &
PIDS+=($!)
wait_port "$P_BACKEND" "${PIDS[-1]}" 20 || { cat "$T/backend.log" >&2; die "backend did not start"; }

cat >"$T/gw.toml" <<EOF
[limits]
drain_timeout_s = 2
[[listener]]
mode = "http"
listen = "127.0.0.1:$P_GW"
upstream = "http://127.0.0.1:$P_BACKEND"
cert = "$T/server.pem"
key = "$T/server.key"
hsts = true
EOF
"$PIVAULT_BIN" proxy --config "$T/gw.toml" >"$T/pivault.log" 2>&1 &
PIDS+=($!)
wait_port "$P_GW" "${PIDS[-1]}" 20 || { cat "$T/pivault.log" >&2; die "pivault proxy did not listen on 127.0.0.1:$P_GW"; }
log "$("$PIVAULT_BIN" --version 2>&1 | head -n1) on https://localhost:$P_GW -> http://127.0.0.1:$P_BACKEND"

# ----------------------------------------------------------------- testssl
TS_VERSION=$("$TESTSSL" --version 2>/dev/null | sed -e 's/\x1b\[[0-9;]*m//g' |
  sed -n 's/.*testssl.sh.* version \([^ ]*\).*/\1/p' | head -n1 || true)
log "testssl.sh ${TS_VERSION:-?} ($TESTSSL); log: $OUT"
rm -f "$OUT" "$OUT.json"
cmd=("$TESTSSL" --quiet --warnings batch --color 0 --add-ca "$T/ca.pem" --ip 127.0.0.1
  --logfile "$OUT" --jsonfile "$OUT.json" "${EXTRA_ARGS[@]}" "https://localhost:$P_GW")
log "running: ${cmd[*]}"
ts_rc=0
"${cmd[@]}" >"$T/testssl.out" 2>&1 || ts_rc=$?
log "testssl.sh exited $ts_rc"
# 240 and above: testssl.sh's own fatal errors (it did not scan).
if ((ts_rc >= 240)); then
  tail -n 5 "$T/testssl.out" >&2
  die "testssl.sh failed before scanning (exit $ts_rc): $(grep -m1 -i 'fatal' "$T/testssl.out" || tail -n 1 "$T/testssl.out")"
fi
kill -0 "${PIDS[-1]}" 2>/dev/null || log "warning: pivault exited during the scan (see below)"

# ----------------------------------------------------------------- report
[[ -s $OUT ]] || { cat "$T/testssl.out" >&2; die "testssl.sh produced no log"; }
echo "== rating =="
sed -n '/Rating (experimental)/,$p' "$OUT" | grep -E 'Protocol Support|Key Exchange|Cipher Strength|Final Score|Overall Grade|Grade cap reasons|Grade warning|^ {20,}[^ ]' || true
echo "== MEDIUM, HIGH or CRITICAL findings (from the JSON) =="
python3 - "$OUT.json" <<'PY'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))
except Exception as e:
    print("  (no JSON: %s)" % e); sys.exit(0)
bad = [r for r in rows if r.get("severity") in ("MEDIUM", "HIGH", "CRITICAL")]
for r in bad:
    print("  %-8s %-28s %s" % (r["severity"], r["id"], r.get("finding", "")))
if not bad:
    print("  none")
PY
if ! grep -q 'Overall Grade' "$OUT"; then
  log "no rating in the output (testssl.sh < 3.2, or a check the rating needs was skipped)"
  tail -n 20 "$T/testssl.out" >&2
  exit 2
fi
if [[ -s $T/pivault.log ]]; then
  echo "== pivault stderr (last lines) =="
  tail -n 5 "$T/pivault.log"
fi
grade=$(sed -n 's/^ *Overall Grade *//p' "$OUT" | head -n1)
log "overall grade: $grade (full log: $OUT)"
[[ $grade == "A+" ]]
