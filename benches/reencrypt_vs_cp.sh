#!/bin/bash
# Re-encryption throughput against `cp -r` of the same ciphertext tree, in
# one run: 400 files of 1 MiB and 2000 of ~16 KiB (435 MiB of ciphertext).
# `pivault reencrypt` flushes every file before renaming it into place, so
# the fair comparison is `cp -r` followed by `sync`; both are printed.
#   cargo build --release && benches/reencrypt_vs_cp.sh [WORKDIR]
set -euo pipefail
P=${PIVAULT:-$(cd "$(dirname "$0")/.." && pwd)/target/release/pivault}
W=${1:-$(mktemp -d)}
rm -rf "$W/src" "$W/v" "$W/vcopy"
mkdir -p "$W/src"
cd "$W"
export PIVAULT_PASSPHRASE='bench passphrase, plinth saffron ozone'
python3 - <<'PY'
import os
for d in range(8):
    os.makedirs(f"src/d{d}", exist_ok=True)
    for i in range(50):
        open(f"src/d{d}/big{i}", "wb").write(os.urandom(1 << 20))
    for i in range(250):
        open(f"src/d{d}/small{i}", "wb").write(os.urandom(16384 + i))
PY
"$P" init v --insecure-test-kdf 2>/dev/null
"$P" import src v 2>/dev/null
"$P" keys rotate v 2>/dev/null
sync
BYTES=$(du -sb v | cut -f1)
t0=$(date +%s.%N); cp -r v vcopy; t1=$(date +%s.%N); sync; t2=$(date +%s.%N)
"$P" reencrypt v 2>/dev/null; t3=$(date +%s.%N)
python3 - "$BYTES" "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
b, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:])
mib = b / 2**20
cp, cps, re = t1 - t0, t2 - t0, t3 - t2
print(f"tree: {mib:.0f} MiB of ciphertext, 2400 files")
print(f"cp -r:        {cp:.2f} s ({mib / cp:.0f} MiB/s)")
print(f"cp -r + sync: {cps:.2f} s ({mib / cps:.0f} MiB/s)")
print(f"reencrypt:    {re:.2f} s ({mib / re:.0f} MiB/s)")
print(f"ratio: {cp / re:.2f} of cp -r, {cps / re:.2f} of cp -r + sync")
PY
rm -rf "$W/src" "$W/v" "$W/vcopy"
