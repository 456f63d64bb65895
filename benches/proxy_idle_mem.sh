#!/usr/bin/env bash
# proxy_idle_mem.sh - memory per idle TLS connection: pivault `http` mode vs nginx
#
# Measures the goal "memory per idle TLS connection below nginx's (measure it:
# RSS with 5,000 idle connections)". Two variants (one per run):
#   - default, "idle after handshake": the connections complete the TLS
#     handshake and send nothing;
#   - --after-request (or AFTER_REQUEST=1), "idle keep-alive after one request":
#     each connection, right after its handshake, sends one
#     `GET / HTTP/1.1` + `Host: localhost` (keep-alive: no Connection: close),
#     reads the complete response (Content-Length or chunked framing; it must
#     be 200 and must not announce Connection: close, else the connection is
#     closed and counted as a failed request), and is then held idle. This is
#     the memory of an idle keep-alive connection between requests, after the
#     terminator has parsed a request and relayed a response on it.
# For each terminator in turn (nginx, then pivault; one at a time) in front of
# the same tiny plaintext backend (python3 -m http.server on 127.0.0.1,
# threading, serving a 43-byte index.html for GET /; it gets one sanity GET,
# plus, with --after-request, one GET per warm-up and per measured connection,
# i.e. ~N + 20 per terminator):
#   1. start it, wait until its port listens, open ~20 warm-up TLS connections
#      (the first one does one GET through to the backend; with
#      --after-request each of the others does one keep-alive GET) and close
#      them;
#   2. sample total RSS (sum of VmRSS of the terminator's processes: the nginx
#      master and all its workers, found by ppid in /proc/*/stat; pivault's one
#      process);
#   3. open N TLS 1.3 connections from one python3 client (ssl module, SNI
#      localhost, certificate verified against the generated self-signed cert),
#      one after the other: complete the handshake on each, send nothing (or,
#      with --after-request, do the one GET and read its whole response), keep
#      them all open; this opening phase is capped at 60 s (110 s with
#      --after-request; every socket operation has a <= 10 s timeout);
#   4. ~2 s after the last connection is open, sample total RSS again (and,
#      with --after-request, count the terminator's established connections
#      to the backend: its upstream keep-alive pool);
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
#   PIVAULT_BIN=$PWD/target/release/pivault bash benches/proxy_idle_mem.sh --after-request
#   N=500 PIVAULT_BIN=... bash benches/proxy_idle_mem.sh --only pivault
# Env: PIVAULT_BIN (required unless --only nginx), N (connections, default 5000),
# AFTER_REQUEST=1 (same as --after-request).
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
#   ALPN, so pivault waits to learn HTTP/1 vs h2 from the first bytes). With
#   --after-request it means: one HTTP/1.1 request served, connection kept
#   alive and waiting for the next request; whatever the terminator keeps per
#   connection after a request (parser/read buffers, the HTTP/1 connection
#   state, allocator high-water marks from relaying the response) is counted.
# - With --after-request the delta also includes whatever the terminators keep
#   on the upstream side: nginx's `keepalive 128` upstream pool (per worker)
#   and pivault's upstream keep-alive pool may hold a few idle connections to
#   the backend. That is part of what is measured (it is the state a real
#   deployment has), but it is shared, not per client connection; the count
#   at the 2nd sample is printed in the notes. python3 -m http.server answers
#   HTTP/1.0 and closes after each response, so in practice few or none are
#   kept. The client waits for each response before opening the next
#   connection, so at most one request is in flight at a time.
# - The client needs N file descriptors and the server N more: the script raises
#   the soft limit (`ulimit -n`, up to the hard limit; 65536 wanted) and fails
#   if it cannot reach N + 1024.

set -euo pipefail

PROG=${0##*/}
usage() {
  cat <<EOF
Usage: PIVAULT_BIN=/path/to/pivault [N=5000] [AFTER_REQUEST=1] $PROG [--only nginx|pivault]
         [--after-request] [-h]
  --after-request  each connection sends one keep-alive GET / and reads the whole response
                   before it is held idle (default: idle right after the handshake)
EOF
}
die() { echo "$PROG: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

ONLY=""
AFTER_REQUEST=${AFTER_REQUEST:-0}
while (($#)); do
  case "$1" in
    --only) [[ $# -ge 2 ]] || die "--only needs nginx or pivault"; ONLY=$2; shift ;;
    --only=*) ONLY=${1#*=} ;;
    --after-request) AFTER_REQUEST=1 ;;
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
case $AFTER_REQUEST in
  1) VARIANT="idle keep-alive after one request"; OPEN_SECS=110 ;;   # handshake + one GET each
  0|"") AFTER_REQUEST=0; VARIANT="idle after handshake"; OPEN_SECS=60 ;;
  *) die "AFTER_REQUEST must be 0 or 1 (got '$AFTER_REQUEST')" ;;
esac
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

class ReqError(Exception):
    pass

def _recv(s, buf):
    d = s.recv(65536)
    if not d:
        raise ReqError("server closed the connection mid-response")
    return buf + d

def _get_keepalive(s):
    """send one keep-alive GET / on S and read exactly one complete response (Content-Length or
    chunked framing); returns (status_line_version, code, framing, body_len). Raises ReqError (or
    OSError on timeout) on failure, or if the server does not keep the connection open."""
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf = _recv(s, buf)
        if len(buf) > 65536: raise ReqError("response header over 64 KiB")
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ReqError("bad status line %r" % lines[0][:80])
    version, code = parts[0], int(parts[1])
    hdr = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        k = k.strip().lower(); v = v.strip()
        hdr[k] = hdr[k] + "," + v if k in hdr else v
    conn = [t.strip().lower() for t in hdr.get("connection", "").split(",")]
    if "chunked" in hdr.get("transfer-encoding", "").lower():
        framing, body = "chunked", 0
        while True:
            while b"\r\n" not in buf: buf = _recv(s, buf)
            line, buf = buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:   # trailers, up to the empty line
                    while b"\r\n" not in buf: buf = _recv(s, buf)
                    line, buf = buf.split(b"\r\n", 1)
                    if not line: break
                break
            while len(buf) < size + 2: buf = _recv(s, buf)
            body += size; buf = buf[size + 2:]
    elif "content-length" in hdr:
        framing, body = "content-length", int(hdr["content-length"].split(",")[0])
        while len(buf) < body: buf = _recv(s, buf)
        buf = buf[body:]
    else:
        raise ReqError("%s %d without Content-Length or chunked framing (body to EOF)" % (version, code))
    if buf:
        raise ReqError("%d unexpected bytes after the response" % len(buf))
    if code != 200:
        raise ReqError("%s %d (expected 200)" % (version, code))
    if "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn):
        raise ReqError("%s %d: server will close the connection (Connection: %s)"
                       % (version, code, hdr.get("connection", "-")))
    return version, code, framing, body

def cmd_warm(port, cafile, count, after_request="0"):
    """one GET through the terminator (must be 200), then COUNT handshakes (each followed by one
    keep-alive GET when AFTER_REQUEST is 1), all closed"""
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
    if after_request == "1":
        for t in socks:
            try:
                _get_keepalive(t)
            except (OSError, ReqError) as e:
                print("keep-alive GET on a warm-up connection failed: %r" % e); sys.exit(1)
    for t in socks: t.close()
    print(info)

def cmd_hold(port, cafile, n, secs, status, hold_max, after_request="0"):
    """open N TLS connections (handshake only; plus one keep-alive GET / with its complete response
    when AFTER_REQUEST is 1) within SECS, report to STATUS, then hold them until SIGTERM (or
    HOLD_MAX seconds)"""
    n = int(n); port = int(port); req = after_request == "1"
    lim = raise_nofile(n + 256)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))   # exit closes every socket
    ctx = _ctx(cafile)
    socks, fail, rfail, last = [], 0, 0, ""
    resp = {}   # "HTTP/1.1 200 content-length 44-byte body" -> count
    t0 = time.monotonic(); deadline = t0 + float(secs)
    while len(socks) < n:
        left = deadline - time.monotonic()
        if left <= 0: last = last or "time limit (%s s) reached" % secs; break
        try:
            t = _open(ctx, port, min(10.0, left))
        except (OSError, ssl.SSLError) as e:
            fail += 1; last = repr(e)[:160]
            if fail + rfail > max(50, n // 10): break
            time.sleep(0.02)
            continue
        if req:
            try:
                v, c, fr, bl = _get_keepalive(t)   # the socket timeout (<= 10 s) bounds each read
                k = "%s %d %s %d-byte body" % (v, c, fr, bl)
                resp[k] = resp.get(k, 0) + 1
            except (OSError, ReqError) as e:
                t.close(); rfail += 1; last = "request: " + repr(e)[:150]
                if fail + rfail > max(50, n // 10): break
                time.sleep(0.02)
                continue
        socks.append(t)
        if len(socks) % 1000 == 0:
            print("  %d connections open (%.1f s)" % (len(socks), time.monotonic() - t0),
                  file=sys.stderr, flush=True)
    el = time.monotonic() - t0
    tmp = status + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d %.1f %d %d | %s\n" % (len(socks), fail, el, lim, rfail, last))
        f.write("; ".join("%s x%d" % kv for kv in sorted(resp.items(), key=lambda kv: -kv[1])) + "\n")
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
established_to() { # client-side established TCP connections to PORT (terminator -> backend), or ?
  if command -v ss >/dev/null; then ss -Htn state established "dport = :$1" 2>/dev/null | wc -l; else echo "?"; fi
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
# Every connection comes from 127.0.0.1: lift the per-listener and
# per-client-address caps with the process cap.
max_connections_per_listener = $((N + 1000))
max_connections_per_client = $((N + 1000))
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
  local ok fail el lim rfail last resp per pss_per upc
  if ! wait_listen "$port" "$pid" 20; then
    tail_log "$sys"; NOTES+=("$sys: did not listen on 127.0.0.1:$port within 20 s"); return 0
  fi
  if ! info=$(timeout 60 python3 "$PY" warm "$port" "$CERT" 20 "$AFTER_REQUEST" 2>"$T/log/$sys-warm.err"); then
    cat "$T/log/$sys-warm.err" >&2; echo "$info" >&2
    NOTES+=("$sys: warm-up / sanity GET failed: ${info:-$(tail -n1 "$T/log/$sys-warm.err")}"); return 0
  fi
  sleep 1
  read -r rss0 pss0 np0 < <(pyh rss "$pid")
  log "  $sys: warm-up done ($info); RSS ${rss0} KiB over $np0 process(es); opening $N connections, $VARIANT (<= $OPEN_SECS s)"
  status=$T/status-$sys
  python3 "$PY" hold "$port" "$CERT" "$N" "$OPEN_SECS" "$status" 300 "$AFTER_REQUEST" >"$T/log/$sys-client.log" 2>&1 &
  CLIENT_PID=$!
  for ((i = 0; i < (OPEN_SECS + 15) * 10; i++)); do   # <= OPEN_SECS + 15 s
    [[ -e $status ]] && break
    kill -0 "$CLIENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ ! -e $status ]]; then
    cat "$T/log/$sys-client.log" >&2
    stop_client; NOTES+=("$sys: the client did not finish opening connections"); return 0
  fi
  IFS=' ' read -r ok fail el lim rfail _ <"$status"
  last=$(sed -n '1s/^[^|]*| \{0,1\}//p' "$status")
  resp=$(sed -n '2p' "$status")
  if ((AFTER_REQUEST)); then
    log "  $sys: $ok connections open after handshake + GET, $fail handshakes and $rfail requests failed, in ${el} s${last:+ (last error: $last)}; responses: ${resp:-none}; waiting 2 s"
  else
    log "  $sys: $ok handshakes done, $fail failed, in ${el} s${last:+ (last error: $last)}; waiting 2 s"
  fi
  sleep 2
  read -r rss1 pss1 np1 < <(pyh rss "$pid")
  est=$(established "$port")
  upc=$(established_to "$P_BACKEND")
  kill -0 "$pid" 2>/dev/null || NOTES+=("$sys: the terminator process exited during the run (see above)")
  stop_client
  sleep 1
  read -r rss2 _ _ < <(pyh rss "$pid")
  per=$(per_conn_kb "$rss0" "$rss1" "$ok")
  if [[ $pss0 != nan && $pss1 != nan ]]; then pss_per=$(per_conn_kb "$pss0" "$pss1" "$ok"); else pss_per=n/a; fi
  log "  $sys: RSS after ${rss1} KiB ($np1 processes), ${est} established at that moment; ${rss2} KiB after closing them"
  PER_CONN[$sys]=$per
  RESULT_ROWS+=("$sys $ok $rss0 $rss1 $per")
  if ((AFTER_REQUEST)); then
    NOTES+=("$sys: $ok/$N connections held after handshake + one GET ($info), $fail handshakes and $rfail requests failed${last:+ (last: $last)}, ${el} s to open; responses: ${resp:-none}; $est established server-side and $upc upstream connection(s) to the backend at the 2nd sample; $np1 process(es); PSS delta ${pss_per} KB/conn; RSS $(kib_to_mb "$rss2") MB after the client closed")
  else
    NOTES+=("$sys: $ok/$N handshakes ($info), $fail failed${last:+ (last: $last)}, ${el} s to open; $est established server-side at the 2nd sample; $np1 process(es); PSS delta ${pss_per} KB/conn; RSS $(kib_to_mb "$rss2") MB after the client closed")
  fi
}

log "temp dir $T; N=$N; variant: $VARIANT; fd limit $NOFILE; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
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
echo "## Memory per idle TLS connection: $VARIANT ($(date -u +%Y-%m-%dT%H:%MZ), N=$N)"
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
if ((AFTER_REQUEST)); then
  echo "connections = TLS 1.3 connections that completed the handshake and one keep-alive GET / (200, whole"
  echo "response read) and were then held open idle (of N=$N requested); per idle connection ="
else
  echo "connections = TLS 1.3 handshakes completed and held open (of N=$N requested); per idle connection ="
fi
echo "(RSS after - RSS before) / connections, KB = 1000 bytes, MB = 10^6 bytes; RSS = sum of VmRSS over"
echo "the terminator's processes (nginx: master + workers, worker_processes auto; pivault: one process)."
for n in "${NOTES[@]}"; do echo "- $n"; done
echo "- machine: $(nproc) CPUs; load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
