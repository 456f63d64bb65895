#!/usr/bin/env bash
# proxy_tunnel_rounds.sh - raw TCP through a TLS tunnel, pivault `tcp` mode
# against stunnel, in many short alternating rounds, with medians and a sign test.
#
# Why: on a shared 2-core machine one cell of proxy-compare.sh's tcp row swings
# by +-20% (iperf3, the TLS client, the terminator and the backend share the
# cores, and neighbours steal time), so a single run cannot say whether pivault
# is above or below stunnel by a few percent. Alternating rounds see the same
# conditions in pairs; the per-round ratios, their median and how many rounds
# each side won say what one run cannot.
#
# Setup mirrors the tcp row of ../shared/bench/proxy-compare.sh: self-signed
# ECDSA P-256 cert, an iperf3 server as the plaintext backend, a stunnel server
# (TLS 1.2/1.3, ECDHE-ECDSA AEAD suites, TLS 1.3 AEAD suites, TCP_NODELAY both
# ways) and pivault with one [[listener]] mode = "tcp" on the same backend. In
# front of each terminator runs its own stunnel *client* (plaintext in, TLS
# out, verifying the cert), configured identically, so the client side costs
# the same for both. Each round runs `iperf3 -c -t SECS -J` (one stream)
# through one terminator, then the other (the order alternates), takes MB/s
# (10^6 bytes/s) received, and reads the terminator's CPU time (user+sys, all
# threads and descendants) from /proc before and after, and the whole
# machine's busy time from /proc/stat: what the rest (iperf3 both ends, the
# stunnel client, neighbours) costs per MB. Once both cores are busy the rate
# is set by the sum, so the report also says what rate ratio the terminators'
# CPU ratio alone predicts.
#
# Run from the repository root:
#   PIVAULT_BIN=$PWD/target/release/pivault bash benches/proxy_tunnel_rounds.sh
#   ROUNDS=20 SECS=4 PIVAULT_BIN=... bash benches/proxy_tunnel_rounds.sh
# Env: PIVAULT_BIN (required), ROUNDS (default 10), SECS (default 3).
# Everything binds to 127.0.0.1 and lives in a temp dir removed on exit; the
# table goes to stdout, progress to stderr.
set -euo pipefail

PROG=${0##*/}
ROUNDS=${ROUNDS:-10}
SECS=${SECS:-3}
die() { echo "$PROG: $*" >&2; exit 1; }
[[ -x ${PIVAULT_BIN:-} && ! -d ${PIVAULT_BIN:-} ]] || die "set PIVAULT_BIN to the pivault binary (a release build)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $ROUNDS -le 200 ]] || die "ROUNDS must be 1..200"
[[ $SECS =~ ^[1-9][0-9]*$ && $SECS -le 60 ]] || die "SECS must be 1..60"
STUNNEL=$(command -v stunnel4 2>/dev/null || command -v stunnel 2>/dev/null || true)
[[ -n $STUNNEL ]] || die "missing stunnel (apt-get install stunnel4)"
for c in iperf3:iperf3 openssl:openssl python3:python3 ss:iproute2 timeout:coreutils; do
  command -v "${c%%:*}" >/dev/null || die "missing ${c%%:*} (apt-get install ${c#*:})"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/proxy-tunnel-rounds.XXXXXX")
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

# All ports in one go: every socket stays bound until all are chosen, so the
# kernel cannot hand out the same port twice.
free_ports() { # free_ports N -> N distinct free ports on 127.0.0.1
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}
read -r P_IPERF P_ST P_PV P_CLI_ST P_CLI_PV < <(free_ports 5)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
chmod 600 "$T/key.pem"

# The settings of proxy-compare.sh's stunnel server (its [tcp] service).
TLS_CIPHERS_12="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
TLS_SUITES_13="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
cat >"$T/stunnel-server.conf" <<EOF
foreground = yes
pid =
syslog = no
debug = warning
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
cert = $T/cert.pem
key = $T/key.pem
sslVersionMin = TLSv1.2
sslVersionMax = TLSv1.3
ciphers = $TLS_CIPHERS_12
ciphersuites = $TLS_SUITES_13

[tcp]
accept = 127.0.0.1:$P_ST
connect = 127.0.0.1:$P_IPERF
EOF
client_conf() { # client_conf LISTEN_PORT TARGET_PORT : proxy-compare.sh's TLS client for the tcp row
  cat <<EOF
foreground = yes
pid =
syslog = no
debug = warning
client = yes
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1

[tunnel]
accept = 127.0.0.1:$1
connect = 127.0.0.1:$2
sslVersionMin = TLSv1.2
verifyPeer = yes
CAfile = $T/cert.pem
EOF
}
client_conf "$P_CLI_ST" "$P_ST" >"$T/client-stunnel.conf"
client_conf "$P_CLI_PV" "$P_PV" >"$T/client-pivault.conf"
cat >"$T/pivault.toml" <<EOF
[[listener]]
mode = "tcp"
listen = "127.0.0.1:$P_PV"
upstream = "127.0.0.1:$P_IPERF"
cert = "$T/cert.pem"
key = "$T/key.pem"
EOF

# One long-lived iperf3 server: it serves one test at a time, which is all
# the rounds need. --idle-timeout restarts it if a broken test leaves it stuck.
iperf3 -s -B 127.0.0.1 -p "$P_IPERF" --idle-timeout $((SECS + 60)) >"$T/iperf3-server.log" 2>&1 &
PIDS+=($!)
IPERF_PID=$!
"$STUNNEL" "$T/stunnel-server.conf" >"$T/stunnel-server.log" 2>&1 &
ST=$!
PIDS+=("$ST")
"$PIVAULT_BIN" proxy --config "$T/pivault.toml" >"$T/pivault.log" 2>&1 &
PV=$!
PIDS+=("$PV")
"$STUNNEL" "$T/client-stunnel.conf" >"$T/client-stunnel.log" 2>&1 &
CLI_ST=$!
PIDS+=("$CLI_ST")
"$STUNNEL" "$T/client-pivault.conf" >"$T/client-pivault.log" 2>&1 &
CLI_PV=$!
PIDS+=("$CLI_PV")

logs() { for f in "$T"/*.log; do echo "---- ${f##*/} ----"; tail -n 15 "$f"; done >&2; }
# Wait until PORT listens (no connection made: a bare connect would reach
# iperf3's control channel); give up if PID dies or after 15 s.
for npp in "iperf3-server:$P_IPERF:$IPERF_PID" "stunnel-server:$P_ST:$ST" "pivault:$P_PV:$PV" \
           "stunnel-client(stunnel):$P_CLI_ST:$CLI_ST" "stunnel-client(pivault):$P_CLI_PV:$CLI_PV"; do
  IFS=: read -r name port pid <<<"$npp"
  ok=0
  for _ in $(seq 150); do
    if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then ok=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  ((ok)) || { logs; die "$name (pid $pid) is not listening on 127.0.0.1:$port"; }
done

# iperf3 CLIENT_PORT SECS OUT : one test through a tunnel client, a few tries
# if the server is still finishing the previous test ("server is busy").
iperf() {
  local port=$1 secs=$2 out=$3 try
  for try in 1 2 3; do
    if timeout $((secs + 30)) iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J >"$out" 2>"$T/iperf3-client.err"; then
      return 0
    fi
    ((try < 3)) && sleep 0.5
  done
  return 1
}
iperf_error() { # iperf_error OUT : iperf3's own error message
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error","?"))' "$1" 2>/dev/null \
    || tail -n 1 "$T/iperf3-client.err"
}

# The whole path works end to end (and is warm): a 1-s test through each tunnel.
for who in stunnel pivault; do
  if [[ $who == stunnel ]]; then port=$P_CLI_ST; else port=$P_CLI_PV; fi
  iperf "$port" 1 "$T/probe.json" || { logs; die "iperf3 through $who failed: $(iperf_error "$T/probe.json")"; }
done

cpu_ticks() { # cpu_ticks PID... : user+sys clock ticks of the processes, their threads and descendants
  python3 - "$@" <<'PY'
import os, sys
# /proc/PID/stat of a thread group leader counts all its threads, live and exited.
kids, ticks = {}, {}
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(st[1]), []).append(int(pid))
        ticks[int(pid)] = int(st[11]) + int(st[12])
seen, todo, total = set(), [int(p) for p in sys.argv[1:]], 0
while todo:
    p = todo.pop()
    if p not in seen:
        seen.add(p)
        total += ticks.get(p, 0)
        todo += kids.get(p, [])
print(total)
PY
}
HZ=$(getconf CLK_TCK)
# Busy clock ticks of the whole machine (user, nice, system, irq, softirq):
# with the terminator's own ticks, what iperf3, the stunnel client and the
# backend cost per MB, the rest of what decides the rate on a shared machine.
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8; exit}' /proc/stat; }

round() { # round NAME CLIENT_PORT PID -> "NAME MB/s cpu_ms_per_MB rest_ms_per_MB retransmits"
  local name=$1 port=$2 pid=$3 c0 c1 m0 m1
  c0=$(cpu_ticks "$pid")
  m0=$(busy_ticks)
  iperf "$port" "$SECS" "$T/iperf.json" || die "iperf3 through $name failed: $(iperf_error "$T/iperf.json")"
  m1=$(busy_ticks)
  c1=$(cpu_ticks "$pid")
  python3 - "$name" "$c0" "$c1" "$HZ" "$T/iperf.json" "$m0" "$m1" <<'PY'
import json, sys
name, c0, c1, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
end = json.load(open(sys.argv[5]))["end"]
m0, m1 = int(sys.argv[6]), int(sys.argv[7])
rate = end["sum_received"]["bits_per_second"] / 8e6
mb = end["sum_received"]["bytes"] / 1e6
rtx = end.get("sum_sent", {}).get("retransmits", 0)
own = (c1 - c0) / hz * 1e3 / mb
rest = max(m1 - m0 - (c1 - c0), 0) / hz * 1e3 / mb
print(name, rate, own, rest, rtx)
PY
}

echo "$PROG: $ROUNDS rounds x 2 x ${SECS}s, iperf3 1 stream via a stunnel TLS client" >&2
: >"$T/rounds"
for r in $(seq "$ROUNDS"); do
  if ((r % 2)); then order="stunnel pivault"; else order="pivault stunnel"; fi
  for who in $order; do
    if [[ $who == stunnel ]]; then round stunnel "$P_CLI_ST" "$ST"; else round pivault "$P_CLI_PV" "$PV"; fi
  done >>"$T/rounds"
  echo "  round $r/$ROUNDS: $(tail -n 2 "$T/rounds" | awk '{printf "%s %.0f MB/s %.2f ms/MB; ", $1, $2, $3}')" >&2
done

python3 - "$T/rounds" "$SECS" "$("$PIVAULT_BIN" --version 2>&1 | head -n1)" \
  "$("$STUNNEL" -version 2>&1 | grep -m1 -o '^stunnel [0-9.]*' || true); $("$STUNNEL" -version 2>&1 | grep -m1 -o 'Running  *with OpenSSL [^ ]*' | sed 's/Running  *with/running with/' || true)" \
  "$(iperf3 --version 2>&1 | head -n1)" <<'PY'
import math, statistics as st, sys
path, secs, pv_ver, st_ver, ip_ver = sys.argv[1:]
rows = {"stunnel": [], "pivault": []}
for line in open(path):
    name, rate, cpu, rest, rtx = line.split()
    rows[name].append((float(rate), float(cpu), float(rest), int(rtx)))
n = len(rows["pivault"])
def sign_p(wins, n):
    # one-sided sign test: P(X >= wins) for X ~ Binomial(n, 1/2)
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n
print(f"## pivault vs stunnel, raw TCP through a TLS tunnel: {n} alternating rounds of {secs} s "
      f"(iperf3, 1 stream, via a stunnel TLS client)\n")
print("| measure | stunnel (median) | pivault (median) | ratio of medians | median of per-round ratios | rounds pivault better | sign test p |")
print("|---|---|---|---|---|---|---|")
for i, (label, higher_better) in enumerate([("MB/s", True), ("CPU ms per MB", False),
                                             ("rest of the machine, CPU ms per MB", False)]):
    a = [r[i] for r in rows["stunnel"]]
    b = [r[i] for r in rows["pivault"]]
    ratios = [y / x for x, y in zip(a, b)]
    better = sum((y > x) if higher_better else (y < x) for x, y in zip(a, b))
    print(f"| {label} | {st.median(a):.3f} | {st.median(b):.3f} | {st.median(b) / st.median(a):.3f}x "
          f"| {st.median(ratios):.3f}x | {better} of {n} | {sign_p(better, n):.3f} |")
print(f"\nper-round MB/s ratios: {' '.join(f'{y[0] / x[0]:.2f}' for x, y in zip(rows['stunnel'], rows['pivault']))}")
print(f"per-round CPU ratios:  {' '.join(f'{y[1] / x[1]:.2f}' for x, y in zip(rows['stunnel'], rows['pivault']))}")
share = st.median([r[1] / (r[1] + r[2]) for r in rows["stunnel"]])
c = st.median([y[1] / x[1] for x, y in zip(rows["stunnel"], rows["pivault"])])
print(f"\nstunnel's share of the machine's busy CPU per MB (median): {share:.2f}. With the rest unchanged, "
      f"a terminator that needs a fraction c of stunnel's CPU is expected at 1 / (1 - {share:.2f} (1 - c)) of its rate "
      f"once both cores are busy: {1 / (1 - share * (1 - c)):.3f}x here.")
print(f"\nsign test p: the chance of pivault doing better in at least that many rounds if neither were better (one-sided).")
rtx = {k: sum(r[3] for r in v) for k, v in rows.items()}
if any(rtx.values()):
    print(f"\nTCP retransmits over all rounds (iperf3 sender, loopback): stunnel {rtx['stunnel']}, pivault {rtx['pivault']}.")
print(f"\n- pivault: {pv_ver}\n- stunnel: {st_ver}\n- iperf3: {ip_ver}")
PY
