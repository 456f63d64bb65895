#!/usr/bin/env bash
# proxy_rounds.sh - 1 KiB keep-alive HTTPS, pivault `http` mode against nginx,
# in many short alternating rounds, with medians and a sign test.
#
# Why: on a shared 2-core machine one 2-s cell of proxy-compare.sh swings by
# +-20% (the load generator, the backend and the terminator share the cores,
# and neighbours steal time), so a single run cannot say whether pivault is
# above or below nginx by a few percent. Alternating rounds see the same
# conditions in pairs; the per-round ratios, their median and how many rounds
# each side won say what one run cannot.
#
# Setup mirrors ../shared/bench/proxy-compare.sh: self-signed ECDSA P-256 cert,
# a plaintext nginx backend (1 worker) serving a 1 KiB file, an nginx TLS front
# (worker_processes auto, TLS 1.2/1.3, ECDHE-ECDSA AEAD suites, keepalive 128
# upstream pool) and pivault with one [[listener]] mode = "http" on the same
# backend. Each round runs `wrk -t2 -c64 -dSECS` against one terminator, then
# the other (the order alternates), and reads the terminator's CPU time
# (user+sys, all threads/processes) from /proc before and after, and the
# whole machine's busy time from /proc/stat: what the rest (wrk, the
# backend, neighbours) costs per request. Once both cores are busy the rate
# is set by the sum, so the report also says what rate ratio the
# terminators' CPU ratio alone predicts.
#
# Run from the repository root:
#   PIVAULT_BIN=$PWD/target/release/pivault bash benches/proxy_rounds.sh
#   ROUNDS=20 SECS=4 PIVAULT_BIN=... bash benches/proxy_rounds.sh
# Env: PIVAULT_BIN (required), ROUNDS (default 10), SECS (default 3),
# CONNS (default 64). Everything binds to 127.0.0.1 and lives in a temp dir
# removed on exit; the table goes to stdout, progress to stderr.
set -euo pipefail

PROG=${0##*/}
ROUNDS=${ROUNDS:-10}
SECS=${SECS:-3}
CONNS=${CONNS:-64}
die() { echo "$PROG: $*" >&2; exit 1; }
[[ -x ${PIVAULT_BIN:-} ]] || die "set PIVAULT_BIN to the pivault binary (a release build)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $ROUNDS -le 200 ]] || die "ROUNDS must be 1..200"
[[ $SECS =~ ^[1-9][0-9]*$ && $SECS -le 60 ]] || die "SECS must be 1..60"
for c in nginx wrk openssl python3 curl; do
  command -v "$c" >/dev/null || die "missing $c (apt-get install nginx-light wrk openssl python3 curl)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/proxy-rounds.XXXXXX")
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
P_BACK=$(free_port); P_NGINX=$(free_port); P_PV=$(free_port)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
mkdir -p "$T/www" "$T/back" "$T/front"
head -c 1024 /dev/urandom >"$T/www/1k.bin"
# nginx's workers run as an unprivileged user: the content must be readable.
chmod 755 "$T" "$T/www"
chmod 644 "$T/www/1k.bin"

common() { # common PREFIX WORKERS
  cat <<EOF
daemon off;
master_process on;
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $1/cb; proxy_temp_path $1/pt; fastcgi_temp_path $1/ft;
  uwsgi_temp_path $1/ut; scgi_temp_path $1/st;
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 75s; keepalive_requests 1000000;
EOF
}
{
  common "$T/back" 1
  echo "  server { listen 127.0.0.1:$P_BACK backlog=4096; root $T/www; location / { } } }"
} >"$T/back.conf"
{
  common "$T/front" auto
  cat <<EOF
  upstream legacy_app { server 127.0.0.1:$P_BACK; keepalive 128; }
  server {
    listen 127.0.0.1:$P_NGINX ssl backlog=4096;
    ssl_certificate $T/cert.pem;
    ssl_certificate_key $T/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:SSL:10m;
    location / {
      proxy_pass http://legacy_app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_max_temp_file_size 0;
    }
  }
}
EOF
} >"$T/front.conf"
cat >"$T/pivault.toml" <<EOF
[[listener]]
mode = "http"
listen = "127.0.0.1:$P_PV"
upstream = "http://127.0.0.1:$P_BACK"
cert = "$T/cert.pem"
key = "$T/key.pem"
EOF

nginx -c "$T/back.conf" -p "$T/back" >"$T/back.log" 2>&1 &
PIDS+=($!)
nginx -c "$T/front.conf" -p "$T/front" >"$T/front.log" 2>&1 &
NGINX_MASTER=$!
PIDS+=("$NGINX_MASTER")
"$PIVAULT_BIN" proxy --config "$T/pivault.toml" >"$T/pivault.log" 2>&1 &
PV=$!
PIDS+=("$PV")

for port in "$P_NGINX" "$P_PV"; do
  ok=0
  for _ in $(seq 100); do
    if curl -skf -o "$T/probe" "https://127.0.0.1:$port/1k.bin" && cmp -s "$T/probe" "$T/www/1k.bin"; then
      ok=1
      break
    fi
    sleep 0.1
  done
  ((ok)) || { tail -n 20 "$T"/*.log >&2; die "terminator on port $port did not answer"; }
done

cpu_ticks() { # cpu_ticks PID... : user+sys clock ticks of the processes, their threads and children
  python3 - "$@" <<'PY'
import os, sys
want = set(int(p) for p in sys.argv[1:])
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(st[1]) in want:  # a child (nginx's workers)
            want.add(int(pid))
total = 0
for p in want:
    try:
        st = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    total += int(st[11]) + int(st[12])
print(total)
PY
}
HZ=$(getconf CLK_TCK)
# Busy clock ticks of the whole machine (user, nice, system, irq, softirq):
# with the terminator's own ticks, what the load generator and the backend
# cost per request, the rest of what decides the rate on a shared machine.
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8; exit}' /proc/stat; }

round() { # round NAME PORT PID -> "NAME req/s p99_ms us_per_req"
  local name=$1 port=$2 pid=$3 c0 c1 m0 m1
  c0=$(cpu_ticks "$pid")
  m0=$(busy_ticks)
  timeout $((SECS + 30)) wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency \
    "https://127.0.0.1:$port/1k.bin" >"$T/wrk.out" 2>&1 || die "wrk failed: $(tail -n 3 "$T/wrk.out")"
  m1=$(busy_ticks)
  c1=$(cpu_ticks "$pid")
  python3 - "$name" "$c0" "$c1" "$HZ" "$SECS" "$T/wrk.out" "$m0" "$m1" <<'PY'
import re, sys
name, c0, c1, hz, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
out = open(sys.argv[6]).read()
m0, m1 = int(sys.argv[7]), int(sys.argv[8])
n = int(re.search(r"(\d+) requests in", out).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
errs = re.search(r"(Socket errors|Non-2xx).*", out)
if errs:
    print(f"{name}: wrk: {errs.group(0)}", file=sys.stderr)
own = (c1 - c0) / hz * 1e6 / n
rest = max(m1 - m0 - (c1 - c0), 0) / hz * 1e6 / n
print(name, n / secs, p99, own, rest, "errors" if errs else "ok")
PY
}

echo "$PROG: $ROUNDS rounds x 2 x ${SECS}s, wrk -t2 -c$CONNS, 1 KiB" >&2
: >"$T/rounds"
for r in $(seq "$ROUNDS"); do
  if ((r % 2)); then order="nginx pivault"; else order="pivault nginx"; fi
  for who in $order; do
    if [[ $who == nginx ]]; then round nginx "$P_NGINX" "$NGINX_MASTER"; else round pivault "$P_PV" "$PV"; fi
  done >>"$T/rounds"
  echo "  round $r/$ROUNDS: $(tail -n 2 "$T/rounds" | awk '{printf "%s %.0f req/s %.1f us/req; ", $1, $2, $4}')" >&2
done

python3 - "$T/rounds" "$ROUNDS" "$SECS" "$CONNS" "$("$PIVAULT_BIN" --version 2>&1 | head -n1)" "$(nginx -v 2>&1)" <<'PY'
import math, statistics as st, sys
path, rounds, secs, conns, pv_ver, ng_ver = sys.argv[1:]
rows = {"nginx": [], "pivault": []}
errors = 0
for line in open(path):
    name, rps, p99, cpu, rest, flag = line.split()
    rows[name].append((float(rps), float(p99), float(cpu), float(rest)))
    errors += flag != "ok"
n = len(rows["pivault"])
def sign_p(wins, n):
    # one-sided sign test: P(X >= wins) for X ~ Binomial(n, 1/2)
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n
print(f"## pivault vs nginx, 1 KiB keep-alive HTTPS: {n} alternating rounds of {secs} s (wrk -t2 -c{conns})\n")
print("| measure | nginx (median) | pivault (median) | ratio of medians | median of per-round ratios | rounds pivault better | sign test p |")
print("|---|---|---|---|---|---|---|")
for i, (label, higher_better) in enumerate([("req/s", True), ("p99 latency ms", False), ("CPU us per request", False),
                                             ("rest of the machine, CPU us per request", False)]):
    a = [r[i] for r in rows["nginx"]]
    b = [r[i] for r in rows["pivault"]]
    ratios = [y / x for x, y in zip(a, b)]
    better = sum((y > x) if higher_better else (y < x) for x, y in zip(a, b))
    print(f"| {label} | {st.median(a):.2f} | {st.median(b):.2f} | {st.median(b) / st.median(a):.3f}x "
          f"| {st.median(ratios):.3f}x | {better} of {n} | {sign_p(better, n):.3f} |")
print(f"\nper-round req/s ratios: {' '.join(f'{y[0] / x[0]:.2f}' for x, y in zip(rows['nginx'], rows['pivault']))}")
print(f"per-round CPU ratios:   {' '.join(f'{y[2] / x[2]:.2f}' for x, y in zip(rows['nginx'], rows['pivault']))}")
share = st.median([r[2] / (r[2] + r[3]) for r in rows["nginx"]])
print(f"\nnginx's share of the machine's busy CPU per request (median): {share:.2f}. With the rest unchanged, "
      f"a terminator that needs a fraction c of nginx's CPU is expected at 1 / (1 - {share:.2f} (1 - c)) of its rate "
      f"once both cores are busy: {1 / (1 - share * (1 - st.median([y[2] / x[2] for x, y in zip(rows['nginx'], rows['pivault'])]))):.3f}x here.")
print(f"\nsign test p: the chance of pivault doing better in at least that many rounds if neither were better (one-sided).")
if errors:
    print(f"\n**{errors} wrk run(s) reported socket errors or non-2xx responses: the figures above are not comparable.**")
print(f"\n- pivault: {pv_ver}\n- nginx: {ng_ver}")
PY
