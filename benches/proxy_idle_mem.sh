#!/usr/bin/env bash
# proxy_idle_mem.sh - memory per idle TLS connection: pivault `http` mode vs nginx
#
# Measures the goal "memory per idle TLS connection below nginx's (measure it:
# RSS with 5,000 idle connections)". For each terminator in turn (nginx, then
# pivault; one at a time) in front of the same tiny plaintext backend
# (python3 -m http.server on 127.0.0.1; it gets one sanity GET, nothing else):
#   1. start it, wait until its port listens, open ~20 warm-up TLS connections
#      (the first one does one GET through to the backend) and close them;
#   2. sample total RSS (sum of VmRSS of the terminator's processes: the nginx
#      master and all its workers, found by ppid in /proc/*/stat; pivault's one
#      process);
#   3. open N TLS 1.3 connections from one python3 client (ssl module, SNI
#      localhost, certificate verified against the generated self-signed cert),
#      complete the handshake on each, send nothing, keep them all open;
#   4. ~2 s after the last handshake, sample total RSS again;
#   5. report (RSS_after - RSS_before) / connections held, in KB (1000 bytes);
#      then close the connections and stop the terminator.
# Setup mirrors /work/shared/bench/proxy-compare.sh: self-signed ECDSA P-256
# cert (openssl), nginx with `worker_processes auto`, TLS 1.2/1.3, ECDHE-ECDSA
# AEAD suites, HTTP/1.1 keep-alive upstream pool; pivault with one
# [[listener]] mode = "http" (schema: docs/PROXY.md). Both get their idle and
# header timeouts raised to 600 s so that nothing is closed during the run.
#
# Run (from the repository root, as root for the fd limit):
#   PIVAULT_BIN=$PWD/target/release/pivault bash benches/proxy_idle_mem.sh
#   N=500 PIVAULT_BIN=... bash benches/proxy_idle_mem.sh --only pivault
# Env: PIVAULT_BIN (required unless --only nginx), N (connections, default 5000).
# Progress goes to stderr, the Markdown table to stdout. Everything binds to
# 127.0.0.1 and lives in a temp dir that is removed on exit.
#
# Caveats:
# - RSS is resident memory, not live heap: it includes allocator caches and
#   arenas (glibc malloc for nginx/OpenSSL, pivault's allocator), so the delta
#   depends on allocator behaviour as well as on per-connection state; pages
#   freed but kept by the allocator still count.
# - nginx runs one worker per CPU; the N connections are split across the
#   workers (unevenly: whichever worker wins accept), and the master's RSS is
#   in the sum. Summed VmRSS counts shared pages (e.g. the shared SSL session
#   cache) once per process; the before/after difference cancels that except
#   for pages first touched during the run. PSS (smaps_rollup) is printed as a
#   cross-check when readable.
# - Idle means: handshake done, no request sent (the python client offers no
#   ALPN, so pivault waits to learn HTTP/1 vs h2 from the first bytes).
# - The client needs N file descriptors and the server N more: the script raises
#   the soft limit (`ulimit -n`, up to the hard limit; 65536 wanted) and fails
#   if it cannot reach N + 1024.

set -euo pipefail

PROG=${0##*/}
usage() {
  cat <<EOF
Usage: PIVAULT_BIN=/path/to/pivault [N=5000] $PROG [--only nginx|pivault] [-h]
EOF
}
die() { echo "$PROG: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

ONLY=""
while (($#)); do
  case "$1" in
    --only) [[ $# -ge 2 ]] || die "--only needs nginx or pivault"; ONLY=$2; shift ;;
    --only=*) ONLY=${1#*=} ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done
case $ONLY in
  "") SYSTEMS=(nginx pivault) ;;
  nginx|pivault) SYSTEMS=("$ONLY") ;;
  *) die "--only must be nginx or pivault (got '$ONLY')" ;;
esac

N=${N:-5000}
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer (got '$N')"
if [[ $ONLY != nginx ]]; then
  [[ -n ${PIVAULT_BIN:-} ]] || die "PIVAULT_BIN must point to the pivault release binary"
  [[ -x $PIVAULT_BIN && ! -d $PIVAULT_BIN ]] || die "PIVAULT_BIN is not an executable: $PIVAULT_BIN"
  case $PIVAULT_BIN in /*) ;; *) PIVAULT_BIN=$PWD/$PIVAULT_BIN ;; esac
fi
NGINX=$(command -v nginx 2>/dev/null || true)
[[ -n $NGINX ]] || { [[ -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx; } || die "nginx not found"
for c in openssl python3; do command -v "$c" >/dev/null || die "$c not found"; done

# ----------------------------------------------------------------------------- fd limit
NEED_FDS=$((N + 1024))
ulimit -n 65536 2>/dev/null || {
  hard=$(ulimit -Hn)
  if [[ $hard == unlimited ]]; then ulimit -n 65536 2>/dev/null || true; else ulimit -n "$hard" 2>/dev/null || true; fi
}
NOFILE=$(ulimit -n)
[[ $NOFILE == unlimited ]] && NOFILE=1048576
((NOFILE >= NEED_FDS)) || die "open-file limit is $NOFILE (hard $(ulimit -Hn)); N=$N needs >= $NEED_FDS (run as root or lower N)"

# ----------------------------------------------------------------------------- temp dir, processes
T=$(mktemp -d "${TMPDIR:-/tmp}/proxy-idle-mem.XXXXXX")
chmod 711 "$T"   # nginx workers may run as nobody
mkdir -p "$T"/{tls,www,log,nginx}
BG_PIDS=()       # servers we started (stopped in reverse order on exit)
CLIENT_PID=""
LAST_PID=""

PY=$T/idle.py
cat >"$PY" <<'PYEOF'
import os, resource, signal, socket, ssl, sys, time

def cmd_ports(n):
    socks = []
    for _ in range(int(n)):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks: s.close()

def _tree(root):
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            st = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(p))
    seen, todo = [], [int(root)]
    while todo:
        p = todo.pop()
        if p in seen: continue
        seen.append(p); todo += kids.get(p, [])
    return seen

def cmd_tree(pid):
    """pid and all its descendants"""
    print(" ".join(str(p) for p in _tree(pid)))

def cmd_rss(pid):
    """prints: total_VmRSS_KiB total_Pss_KiB(or nan) nprocs  over pid and its descendants"""
    rss = pss = 0; n = 0; pss_ok = True
    for p in _tree(pid):
        try:
            for line in open("/proc/%d/status" % p):
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]); n += 1; break
        except OSError:
            continue
        try:
            for line in open("/proc/%d/smaps_rollup" % p):
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]); break
        except OSError:
            pss_ok = False
    print(rss, pss if pss_ok else "nan", n)

def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]

def _ctx(cafile):
    c = ssl.create_default_context(cafile=cafile)   # verify chain + hostname "localhost"
    c.minimum_version = ssl.TLSVersion.TLSv1_3
    c.maximum_version = ssl.TLSVersion.TLSv1_3
    return c

def _open(ctx, port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(s, server_hostname="localhost")   # full handshake, SNI localhost
    except BaseException:
        s.close(); raise

def cmd_warm(port, cafile, count):
    """one GET through the terminator (must be 200), then COUNT handshakes, all closed"""
    ctx = _ctx(cafile); port = int(port)
    s = _open(ctx, port, 10)
    info = "%s %s" % (s.version(), s.cipher()[0])
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d: break
        data += d
        if len(data) > 1 << 20: break
    s.close()
    status = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    if " 200" not in status:
        print("sanity GET through the terminator failed: %r" % status); sys.exit(1)
    socks = [_open(ctx, port, 10) for _ in range(int(count))]
    for t in socks: t.close()
    print(info)

def cmd_hold(port, cafile, n, secs, status, hold_max):
    """open N TLS connections (handshake only) within SECS, report to STATUS, then hold them
    until SIGTERM (or HOLD_MAX seconds)"""
    n = int(n); port = int(port)
    lim = raise_nofile(n + 256)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))   # exit closes every socket
    ctx = _ctx(cafile)
    socks, fail, last = [], 0, ""
    t0 = time.monotonic(); deadline = t0 + float(secs)
    while len(socks) < n:
        left = deadline - time.monotonic()
        if left <= 0: last = last or "time limit (%s s) reached" % secs; break
        try:
            socks.append(_open(ctx, port, min(10.0, left)))
            if len(socks) % 1000 == 0:
                print("  %d connections open (%.1f s)" % (len(socks), time.monotonic() - t0),
                      file=sys.stderr, flush=True)
        except (OSError, ssl.SSLError) as e:
            fail += 1; last = repr(e)[:160]
            if fail > max(50, n // 10): break
            time.sleep(0.02)
    el = time.monotonic() - t0
    tmp = status + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d %.1f %d | %s\n" % (len(socks), fail, el, lim, last))
    os.rename(tmp, status)
    end = time.monotonic() + float(hold_max)
    while time.monotonic() < end:
        time.sleep(0.5)

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"ports": cmd_ports, "tree": cmd_tree, "rss": cmd_rss, "warm": cmd_warm,
     "hold": cmd_hold}[cmd](*args)
PYEOF
pyh() { python3 "$PY" "$@"; }

start_bg() { # start_bg NAME CMD... ; sets LAST_PID (the command's own pid: bash execs it)
  local name=$1; shift
  "$@" >"$T/log/$name.log" 2>&1 &
  LAST_PID=$!
  BG_PIDS+=("$LAST_PID")
}
stop_tree() { # stop_tree PID : SIGTERM, wait <= 10 s, then SIGKILL it and any descendant left
  local pid=$1 kids i k
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kids=$(pyh tree "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    for k in $kids; do [[ $k == "$pid" ]] || kill -KILL "$k" 2>/dev/null || true; done
  fi
  wait "$pid" 2>/dev/null || true
}
stop_client() {
  local pid=$CLIENT_PID i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  CLIENT_PID=""
}
cleanup() {
  local rc=$? i
  set +e
  stop_client
  for ((i = ${#BG_PIDS[@]} - 1; i >= 0; i--)); do stop_tree "${BG_PIDS[i]}"; done
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

is_listening() {
  if command -v ss >/dev/null; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
wait_listen() { # wait_listen PORT PID SECS -> 0 when PORT listens; 1 if PID died or timeout
  local port=$1 pid=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    is_listening "$port" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
established() { # server-side established TCP connections on PORT, or ? without ss
  if command -v ss >/dev/null; then ss -Htn state established "sport = :$1" 2>/dev/null | wc -l; else echo "?"; fi
}
tail_log() { echo "---- $1 (last lines) ----" >&2; tail -n 15 "$T/log/$1.log" >&2 2>/dev/null || true; }

# ----------------------------------------------------------------------------- cert, ports, configs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" >"$T/log/openssl.log" 2>&1 \
  || { cat "$T/log/openssl.log" >&2; die "openssl could not make the test certificate"; }
chmod 600 "$T/tls/key.pem"
CERT=$T/tls/cert.pem KEY=$T/tls/key.pem
echo "<html><body>idle-mem backend</body></html>" >"$T/www/index.html"
chmod 755 "$T/www"; chmod 644 "$T/www/index.html"

read -r P_BACKEND P_NGINX P_PIVAULT < <(pyh ports 3)

TLS_CIPHERS_12="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
cat >"$T/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $((N + 1024)); }
http {
  access_log off;
  client_body_temp_path $T/nginx/client_body;
  proxy_temp_path $T/nginx/proxy_temp;
  fastcgi_temp_path $T/nginx/fastcgi_temp;
  uwsgi_temp_path $T/nginx/uwsgi_temp;
  scgi_temp_path $T/nginx/scgi_temp;
  default_type application/octet-stream;
  tcp_nodelay on;
  keepalive_timeout 600s;
  client_header_timeout 600s;
  upstream legacy_app {
    server 127.0.0.1:$P_BACKEND;
    keepalive 128;
  }
  server {
    listen 127.0.0.1:$P_NGINX ssl backlog=4096;
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $TLS_CIPHERS_12;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 10m;
    location / {
      proxy_pass http://legacy_app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF

cat >"$T/pivault.toml" <<EOF
# written by proxy_idle_mem.sh (schema: docs/PROXY.md)
[limits]
max_connections = $((N + 1000))
handshake_timeout_s = 30
idle_timeout_s = 600
header_timeout_s = 600
drain_timeout_s = 5

[[listener]]
mode = "http"
listen = "127.0.0.1:$P_PIVAULT"
upstream = "http://127.0.0.1:$P_BACKEND"
cert = "$CERT"
key = "$KEY"
EOF

# ----------------------------------------------------------------------------- measurement
RESULT_ROWS=()   # "system ok before_kib after_kib per_conn_kb"
NOTES=()
declare -A PER_CONN=()

kib_to_mb() { python3 -c 'import sys; print("%.1f" % (int(sys.argv[1]) * 1024 / 1e6))' "$1"; }
per_conn_kb() { # per_conn_kb BEFORE_KIB AFTER_KIB CONNS
  python3 -c 'import sys
b, a, n = (float(x) for x in sys.argv[1:4])
print("%.2f" % ((a - b) * 1024 / 1000 / n) if n > 0 else "nan")' "$1" "$2" "$3"
}

measure() { # measure SYSTEM PORT PID
  local sys=$1 port=$2 pid=$3 info rss0 pss0 np0 rss1 pss1 np1 rss2 est status i
  local ok fail el lim last per pss_per
  if ! wait_listen "$port" "$pid" 20; then
    tail_log "$sys"; NOTES+=("$sys: did not listen on 127.0.0.1:$port within 20 s"); return 0
  fi
  if ! info=$(timeout 60 python3 "$PY" warm "$port" "$CERT" 20 2>"$T/log/$sys-warm.err"); then
    cat "$T/log/$sys-warm.err" >&2; echo "$info" >&2
    NOTES+=("$sys: warm-up / sanity GET failed: ${info:-$(tail -n1 "$T/log/$sys-warm.err")}"); return 0
  fi
  sleep 1
  read -r rss0 pss0 np0 < <(pyh rss "$pid")
  log "  $sys: warm-up done ($info); RSS ${rss0} KiB over $np0 process(es); opening $N idle connections (<= 60 s)"
  status=$T/status-$sys
  python3 "$PY" hold "$port" "$CERT" "$N" 60 "$status" 300 >"$T/log/$sys-client.log" 2>&1 &
  CLIENT_PID=$!
  for ((i = 0; i < 750; i++)); do   # <= 75 s
    [[ -e $status ]] && break
    kill -0 "$CLIENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ ! -e $status ]]; then
    cat "$T/log/$sys-client.log" >&2
    stop_client; NOTES+=("$sys: the client did not finish opening connections"); return 0
  fi
  IFS=' ' read -r ok fail el lim _ <"$status"
  last=$(sed 's/^[^|]*| \{0,1\}//' "$status")
  log "  $sys: $ok handshakes done, $fail failed, in ${el} s${last:+ (last error: $last)}; waiting 2 s"
  sleep 2
  read -r rss1 pss1 np1 < <(pyh rss "$pid")
  est=$(established "$port")
  kill -0 "$pid" 2>/dev/null || NOTES+=("$sys: the terminator process exited during the run (see above)")
  stop_client
  sleep 1
  read -r rss2 _ _ < <(pyh rss "$pid")
  per=$(per_conn_kb "$rss0" "$rss1" "$ok")
  if [[ $pss0 != nan && $pss1 != nan ]]; then pss_per=$(per_conn_kb "$pss0" "$pss1" "$ok"); else pss_per=n/a; fi
  log "  $sys: RSS after ${rss1} KiB ($np1 processes), ${est} established at that moment; ${rss2} KiB after closing them"
  PER_CONN[$sys]=$per
  RESULT_ROWS+=("$sys $ok $rss0 $rss1 $per")
  NOTES+=("$sys: $ok/$N handshakes ($info), $fail failed${last:+ (last: $last)}, ${el} s to open; $est established server-side at the 2nd sample; $np1 process(es); PSS delta ${pss_per} KB/conn; RSS $(kib_to_mb "$rss2") MB after the client closed")
}

log "temp dir $T; N=$N; fd limit $NOFILE; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

start_bg backend python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$P_BACKEND"
BACKEND_PID=$LAST_PID
wait_listen "$P_BACKEND" "$BACKEND_PID" 20 || { tail_log backend; die "backend (python3 -m http.server) did not start"; }

for sys in "${SYSTEMS[@]}"; do
  case $sys in
    nginx)
      log "system nginx ($($NGINX -v 2>&1 | sed 's/^nginx version: //'), worker_processes auto)"
      start_bg nginx "$NGINX" -p "$T/nginx" -c "$T/nginx.conf" -e "$T/nginx/error.log"
      SPID=$LAST_PID
      measure nginx "$P_NGINX" "$SPID" || true
      [[ -s $T/nginx/error.log ]] && grep -v '^\s*$' "$T/nginx/error.log" | tail -n 5 >&2 || true
      stop_tree "$SPID"
      ;;
    pivault)
      log "system pivault ($("$PIVAULT_BIN" --version 2>&1 | head -n1); $PIVAULT_BIN proxy --config ...)"
      start_bg pivault "$PIVAULT_BIN" proxy --config "$T/pivault.toml"
      SPID=$LAST_PID
      measure pivault "$P_PIVAULT" "$SPID" || true
      stop_tree "$SPID"
      ;;
  esac
done

# ----------------------------------------------------------------------------- report
echo
echo "## Memory per idle TLS connection ($(date -u +%Y-%m-%dT%H:%MZ), N=$N)"
echo
echo "| system | connections | RSS before (MB) | RSS after (MB) | per idle connection (KB) |"
echo "|---|---|---|---|---|"
for row in "${RESULT_ROWS[@]}"; do
  read -r s ok b a per <<<"$row"
  echo "| $s | $ok | $(kib_to_mb "$b") | $(kib_to_mb "$a") | $per |"
done
echo
if [[ -n ${PER_CONN[nginx]:-} && -n ${PER_CONN[pivault]:-} ]]; then
  python3 -c 'import sys
p, n = float(sys.argv[1]), float(sys.argv[2])
print("pivault/nginx per idle connection: %s" % ("%.2f" % (p / n) if n > 0 else "n/a (nginx delta <= 0)"))' \
    "${PER_CONN[pivault]}" "${PER_CONN[nginx]}"
  echo
fi
echo "connections = TLS 1.3 handshakes completed and held open (of N=$N requested); per idle connection ="
echo "(RSS after - RSS before) / connections, KB = 1000 bytes, MB = 10^6 bytes; RSS = sum of VmRSS over"
echo "the terminator's processes (nginx: master + workers, worker_processes auto; pivault: one process)."
for n in "${NOTES[@]}"; do echo "- $n"; done
echo "- machine: $(nproc) CPUs; load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
