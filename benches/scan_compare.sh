#!/usr/bin/env bash
# Compares `pivault scan --json` with ripgrep searching the same tree for an
# SSN pattern, in the same run, on a generated corpus of mixed text (prose,
# logs, CSV; a little PI among many decoy numbers). Prints both times and
# the throughput ratio pivault/ripgrep (goal: >= 0.5).
#
#   benches/scan_compare.sh [SIZE_MB]      # default 200
#
# PIVAULT=path/to/pivault skips the release build; CORPUS=dir reuses or
# keeps a corpus (default: a temporary directory, removed at exit);
# RUNS=n timed runs per tool after one warm-up (default 3; best is kept).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${1:-200}
RUNS=${RUNS:-3}
command -v rg >/dev/null || { echo "ripgrep (rg) is needed: apt-get install -y ripgrep" >&2; exit 2; }
command -v bc >/dev/null || { echo "bc is needed: apt-get install -y bc" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed to generate the corpus" >&2; exit 2; }

if [ -z "${PIVAULT:-}" ]; then
    cargo build --release --quiet --bin pivault
    PIVAULT=target/release/pivault
fi

if [ -z "${CORPUS:-}" ]; then
    CORPUS=$(mktemp -d)
    trap 'rm -rf "$CORPUS"' EXIT
fi

if [ ! -f "$CORPUS/.complete-$SIZE_MB" ]; then
    echo "generating ${SIZE_MB} MB corpus in $CORPUS ..." >&2
    python3 - "$CORPUS" "$SIZE_MB" <<'PY'
import os, random, sys
root, size_mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(17)
words = ("the of and to in is was for on with as by at from that this be are it or an have "
         "customer account report quarterly revenue meeting schedule project office boston "
         "contract vendor policy review update security training employee invoice shipment "
         "payment delivery support request service network server database backup").split()
first = "Maria James Aisha Wei Patrick Sofia Daniel Priya Liam Fatima Noah Grace".split()
last = "Gonzalez Sullivan Okafor Chen Rossi Murphy Patel Walsh Haddad Nguyen Silva".split()
def d(n): return "".join(rnd.choice("0123456789") for _ in range(n))
def prose():
    return " ".join(rnd.choice(words) for _ in range(rnd.randint(8, 20))).capitalize() + "."
def log():
    return (f"2024-03-{rnd.randint(1,28):02d}T{rnd.randint(0,23):02d}:{rnd.randint(0,59):02d}:"
            f"{rnd.randint(0,59):02d}.{d(3)}Z INFO pid={d(4)} req={rnd.getrandbits(128):032x} "
            f"ip=10.{rnd.randint(0,255)}.{rnd.randint(0,255)}.{rnd.randint(0,255)} "
            f"status=200 bytes={d(5)} took={rnd.randint(1,999)}ms")
def csv():
    return (f"{rnd.choice(first)},{rnd.choice(last)},617-555-{d(4)},19{d(2)}-0{rnd.randint(1,9)}-1{d(1)},"
            f"{d(3)}.{d(2)},{rnd.choice(words)}")
def pi():
    r = rnd.random()
    if r < 0.5:
        return f"{rnd.choice(first)} {rnd.choice(last)} SSN {rnd.randint(100,665)}-{rnd.randint(10,99)}-{rnd.randint(1000,9999)}"
    body = "4" + d(14)
    total = 0
    for i, c in enumerate(reversed(body)):
        v = int(c) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    card = body + str((10 - total % 10) % 10)
    return f"Card on file for {rnd.choice(first)} {rnd.choice(last)}: {card[:4]} {card[4:8]} {card[8:12]} {card[12:]}"
target = size_mb * 1_000_000
written, n = 0, 0
kinds = [prose] * 5 + [log] * 3 + [csv] * 2
while written < target:
    sub = os.path.join(root, f"d{n % 20:02d}", f"e{(n // 20) % 10}")
    os.makedirs(sub, exist_ok=True)
    lines = []
    size = 0
    while size < 500_000:
        line = pi() if rnd.random() < 0.0005 else rnd.choice(kinds)()
        lines.append(line)
        size += len(line) + 1
    ext = [".txt", ".log", ".csv"][n % 3]
    with open(os.path.join(sub, f"f{n:05d}{ext}"), "w") as f:
        f.write("\n".join(lines) + "\n")
    written += size
    n += 1
PY
    touch "$CORPUS/.complete-$SIZE_MB"
fi

bytes=$(du -sb "$CORPUS" | cut -f1)
best() { # best wall-clock seconds of RUNS runs of "$@" (after one warm-up)
    "$@" >/dev/null 2>&1 || true
    local b=""
    for _ in $(seq "$RUNS"); do
        local s e t
        s=$(date +%s.%N)
        "$@" >/dev/null 2>&1 || true
        e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc -l)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
    done
    echo "$b"
}
rg_s=$(best rg -c '\b\d{3}-\d{2}-\d{4}\b' "$CORPUS")
pv_s=$(best "$PIVAULT" scan --json "$CORPUS")
rg_hits=$(rg -c '\b\d{3}-\d{2}-\d{4}\b' "$CORPUS" | awk -F: '{s+=$NF} END {print s+0}')
pv_hits=$("$PIVAULT" scan --json "$CORPUS" 2>/dev/null | wc -l || true)
mb=$(echo "$bytes / 1000000" | bc -l)
printf 'corpus: %.0f MB in %s files, %s CPUs\n' "$mb" "$(find "$CORPUS" -type f | wc -l)" "$(nproc)"
printf 'ripgrep %s: %.3f s (%.0f MB/s), %s matching lines\n' "$(rg --version | head -1 | cut -d' ' -f2)" "$rg_s" "$(echo "$mb / $rg_s" | bc -l)" "$rg_hits"
printf 'pivault scan --json: %.3f s (%.0f MB/s), %s findings\n' "$pv_s" "$(echo "$mb / $pv_s" | bc -l)" "$pv_hits"
printf 'throughput ratio pivault/ripgrep: %.2f (goal >= 0.5)\n' "$(echo "$rg_s / $pv_s" | bc -l)"
