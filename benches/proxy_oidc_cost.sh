#!/usr/bin/env bash
# proxy_oidc_cost.sh - what single sign-on costs per request: 1 KiB
# keep-alive HTTPS through one pivault process, to an `http` listener with
# `[listener.oidc]` carrying a valid session cookie, against the same
# request to a listener without it, in alternating rounds (as
# proxy_rounds.sh: a shared 2-core machine swings too much for one run).
#
# Setup: self-signed ECDSA P-256 cert, a plaintext nginx backend (1 worker)
# serving a 1 KiB file, a real OpenID provider (oidc-provider-mock from
# PyPI, run by $PIVAULT_OIDC_PYTHON or python3) on 127.0.0.1, one pivault
# with two listeners on that backend. curl logs in once through the
# provider (its sign-in form, a cookie jar) to get a session cookie; each
# round then runs `wrk -t2 -cCONNS -dSECS` with that cookie against the
# OIDC listener and without it against the plain one (order alternating),
# and reads pivault's CPU time from /proc before and after.
#
# Run from the repository root:
#   PIVAULT_BIN=$PWD/target/release/pivault bash benches/proxy_oidc_cost.sh
# Env: PIVAULT_BIN (required), ROUNDS (default 10), SECS (default 3),
# CONNS (default 64), PIVAULT_OIDC_PYTHON. Everything binds to 127.0.0.1
# and lives in a temp dir removed on exit; the table goes to stdout.
set -euo pipefail

PROG=${0##*/}
ROUNDS=${ROUNDS:-10}
SECS=${SECS:-3}
CONNS=${CONNS:-64}
PY=${PIVAULT_OIDC_PYTHON:-python3}
die() { echo "$PROG: $*" >&2; exit 1; }
[[ -x ${PIVAULT_BIN:-} ]] || die "set PIVAULT_BIN to the pivault binary (a release build)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $ROUNDS -le 200 ]] || die "ROUNDS must be 1..200"
[[ $SECS =~ ^[1-9][0-9]*$ && $SECS -le 60 ]] || die "SECS must be 1..60"
for c in nginx wrk openssl python3 curl; do
  command -v "$c" >/dev/null || die "missing $c (apt-get install nginx-light wrk openssl python3 curl)"
done
"$PY" -c "import oidc_provider_mock" 2>/dev/null || die "$PY has no oidc_provider_mock (pip install oidc-provider-mock==0.3.4)"

T=$(mktemp -d "${TMPDIR:-/tmp}/proxy-oidc-cost.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_BACK=$(free_port); P_PLAIN=$(free_port); P_OIDC=$(free_port); P_IDP=$(free_port)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
mkdir -p "$T/www" "$T/back"
head -c 1024 /dev/urandom >"$T/www/1k.bin"
chmod 755 "$T" "$T/www"
chmod 644 "$T/www/1k.bin"
cat >"$T/back.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $T/back/nginx.pid;
error_log $T/back/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $T/back/cb; proxy_temp_path $T/back/pt; fastcgi_temp_path $T/back/ft;
  uwsgi_temp_path $T/back/ut; scgi_temp_path $T/back/st;
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 75s; keepalive_requests 1000000;
  server { listen 127.0.0.1:$P_BACK backlog=4096; root $T/www; location / { } }
}
EOF
echo secret >"$T/client.secret"
openssl rand -base64 32 >"$T/cookie.keys"
cat >"$T/pivault.toml" <<EOF
[[listener]]
mode = "http"
listen = "127.0.0.1:$P_PLAIN"
upstream = "http://127.0.0.1:$P_BACK"
cert = "$T/cert.pem"
key = "$T/key.pem"

[[listener]]
mode = "http"
listen = "127.0.0.1:$P_OIDC"
upstream = "http://127.0.0.1:$P_BACK"
cert = "$T/cert.pem"
key = "$T/key.pem"
[listener.oidc]
issuer = "http://127.0.0.1:$P_IDP"
client_id = "bench"
client_secret_file = "$T/client.secret"
cookie_key_file = "$T/cookie.keys"
allow_groups = ["staff"]
EOF

nginx -c "$T/back.conf" -p "$T/back" >"$T/back.log" 2>&1 &
PIDS+=($!)
"$PY" -m oidc_provider_mock -H 127.0.0.1 -p "$P_IDP" \
  --user-claims '{"sub":"alice","email":"alice@example.com","email_verified":true,"groups":["staff"]}' \
  >"$T/idp.log" 2>&1 &
PIDS+=($!)
"$PIVAULT_BIN" proxy --config "$T/pivault.toml" >"$T/pivault.log" 2>&1 &
PV=$!
PIDS+=("$PV")

for _ in $(seq 150); do
  curl -sf -o /dev/null "http://127.0.0.1:$P_IDP/.well-known/openid-configuration" &&
    curl -skf -o /dev/null "https://127.0.0.1:$P_PLAIN/1k.bin" && break
  sleep 0.1
done

# The login, as a browser: to the provider, its form, back to the gateway.
C=(curl -sk -c "$T/jar" -b "$T/jar" -o /dev/null -w '%{redirect_url}')
to_idp=$("${C[@]}" "https://localhost:$P_OIDC/1k.bin" --resolve "localhost:$P_OIDC:127.0.0.1")
back=$(curl -s -o /dev/null -w '%{redirect_url}' --data sub=alice "$to_idp")
"${C[@]}" "$back" --resolve "localhost:$P_OIDC:127.0.0.1" >/dev/null
SESSION=$(awk -F'\t' '$6 == "__Host-pivault-session" {print $7}' "$T/jar")
[[ -n $SESSION ]] || { tail -n 20 "$T"/*.log >&2; die "the login did not give a session cookie"; }
H="Cookie: __Host-pivault-session=$SESSION"
curl -skf -H "$H" -o "$T/probe" "https://127.0.0.1:$P_OIDC/1k.bin" && cmp -s "$T/probe" "$T/www/1k.bin" ||
  die "the session cookie does not pass the OIDC listener"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

round() { # round NAME PORT [wrk args...] -> "NAME req/s p99_ms us_per_req ok|errors"
  local name=$1 port=$2 c0 c1
  shift 2
  c0=$(cpu_ticks "$PV")
  timeout $((SECS + 30)) wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency "$@" \
    "https://127.0.0.1:$port/1k.bin" >"$T/wrk.out" 2>&1 || die "wrk failed: $(tail -n 3 "$T/wrk.out")"
  c1=$(cpu_ticks "$PV")
  python3 - "$name" "$c0" "$c1" "$HZ" "$SECS" "$T/wrk.out" <<'PY'
import re, sys
name, c0, c1, hz, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
out = open(sys.argv[6]).read()
n = int(re.search(r"(\d+) requests in", out).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
errs = re.search(r"(Socket errors|Non-2xx).*", out)
print(name, n / secs, p99, (c1 - c0) / hz * 1e6 / n, "errors" if errs else "ok")
PY
}

echo "$PROG: $ROUNDS rounds x 2 x ${SECS}s, wrk -t2 -c$CONNS, 1 KiB" >&2
: >"$T/rounds"
for r in $(seq "$ROUNDS"); do
  if ((r % 2)); then order="plain oidc"; else order="oidc plain"; fi
  for who in $order; do
    if [[ $who == plain ]]; then round plain "$P_PLAIN"; else round oidc "$P_OIDC" -H "$H"; fi
  done >>"$T/rounds"
  echo "  round $r/$ROUNDS: $(tail -n 2 "$T/rounds" | awk '{printf "%s %.0f req/s %.1f us/req; ", $1, $2, $4}')" >&2
done

python3 - "$T/rounds" "$SECS" "$CONNS" "${#SESSION}" "$("$PIVAULT_BIN" --version 2>&1 | head -n1)" <<'PY'
import statistics as st, sys
path, secs, conns, clen, ver = sys.argv[1:]
rows = {"plain": [], "oidc": []}
errors = 0
for line in open(path):
    name, rps, p99, cpu, flag = line.split()
    rows[name].append((float(rps), float(p99), float(cpu)))
    errors += flag != "ok"
n = len(rows["oidc"])
print(f"## OIDC-protected request (valid {clen}-byte session cookie) vs the same request without OIDC: {n} alternating rounds of {secs} s (wrk -t2 -c{conns}, 1 KiB)\n")
print("| measure | without OIDC (median) | with OIDC (median) | ratio of medians | median of per-round ratios |")
print("|---|---|---|---|---|")
for i, label in enumerate(["req/s", "p99 latency ms", "pivault CPU us per request"]):
    a = [r[i] for r in rows["plain"]]
    b = [r[i] for r in rows["oidc"]]
    print(f"| {label} | {st.median(a):.2f} | {st.median(b):.2f} | {st.median(b) / st.median(a):.3f}x | {st.median([y / x for x, y in zip(a, b)]):.3f}x |")
d = st.median([y[2] - x[2] for x, y in zip(rows["plain"], rows["oidc"])])
print(f"\nmedian extra pivault CPU per request with OIDC: {d:.2f} us")
if errors:
    print(f"\n**{errors} wrk run(s) reported socket errors or non-2xx responses: the figures above are not comparable.**")
print(f"\n- pivault: {ver}")
PY
