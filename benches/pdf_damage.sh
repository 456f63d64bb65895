#!/usr/bin/env bash
# Recall on damaged PDFs (issue 20 point 3): takes a real PDF holding an
# SSN in context (tests/fixtures/scan_formats/record.pdf, a short staff
# record LibreOffice saved; tests/scan_formats/make_office.sh makes it),
# makes N damaged copies of it deterministically, and counts in how many poppler's
# `pdftotext` shows the SSN against how many `pivault scan` reports it.
# Goal: pivault >= pdftotext.
#
#   benches/pdf_damage.sh [N]      # default 400 copies
#
# The damage, one kind per copy in turn (seeded: the same copies every
# run): a truncation at a random point; the cross-reference table and
# trailer cut off (the file ends inside them); 1-4 flipped bytes; 1-3
# ranges of 1-64 bytes overwritten; 1-2 ranges of 1-256 bytes deleted
# (the offsets after them shift); 1-2 runs of 1-256 random bytes inserted;
# 1-2 aligned 512-byte sectors zeroed.
#
# PIVAULT=path/to/pivault skips the build (default: a debug build in
# $CARGO_TARGET_DIR or target/); KEEP=dir keeps the copies there;
# VERBOSE=1 lists the copies each tool missed; SEED=n changes the damage.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-400}
for tool in pdftotext python3; do
    command -v "$tool" >/dev/null || {
        echo "$tool is needed (Debian: apt-get install -y poppler-utils python3)" >&2
        exit 2
    }
done

if [ -z "${PIVAULT:-}" ]; then
    cargo build --quiet --bin pivault
    PIVAULT=${CARGO_TARGET_DIR:-target}/debug/pivault
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${KEEP:-$work/copies}
mkdir -p "$out"

cp tests/fixtures/scan_formats/record.pdf "$work/record.pdf"
pdftotext "$work/record.pdf" - | grep -q 536-22-1234 || { echo "pdftotext misses the SSN in the intact PDF" >&2; exit 2; }

python3 - "$work/record.pdf" "$out" "$N" "${SEED:-20}" <<'PY'
import os, random, sys
src, out, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pdf = open(src, "rb").read()
rnd = random.Random(seed)
xref = pdf.rfind(b"xref")

def truncate(b):
    return b[: rnd.randrange(len(b) // 20, len(b))]

def xref_cut(b):
    return b[: rnd.randrange(xref, len(b) - 1)]

def flip(b):
    b = bytearray(b)
    for _ in range(rnd.randint(1, 4)):
        b[rnd.randrange(len(b))] ^= rnd.randint(1, 255)
    return bytes(b)

def overwrite(b):
    b = bytearray(b)
    for _ in range(rnd.randint(1, 3)):
        k = rnd.randint(1, 64)
        at = rnd.randrange(len(b) - k)
        b[at : at + k] = bytes(rnd.randrange(256) for _ in range(k))
    return bytes(b)

def delete(b):
    for _ in range(rnd.randint(1, 2)):
        k = rnd.randint(1, 256)
        at = rnd.randrange(len(b) - k)
        b = b[:at] + b[at + k :]
    return b

def insert(b):
    for _ in range(rnd.randint(1, 2)):
        at = rnd.randrange(len(b))
        b = b[:at] + bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 256))) + b[at:]
    return b

def sector(b):
    b = bytearray(b)
    for _ in range(rnd.randint(1, 2)):
        at = rnd.randrange(len(b) // 512 + 1) * 512
        b[at : at + 512] = bytes(len(b[at : at + 512]))
    return bytes(b)

kinds = [truncate, xref_cut, flip, overwrite, delete, insert, sector]
for i in range(n):
    kind = kinds[i % len(kinds)]
    with open(os.path.join(out, f"d{i:03}-{kind.__name__}.pdf"), "wb") as f:
        f.write(kind(pdf))
PY

# pdftotext: the SSN in its output (a copy it cannot open shows nothing).
: > "$work/poppler"
for f in "$out"/*.pdf; do
    if timeout 20 pdftotext -q "$f" - 2>/dev/null | grep -q 536-22-1234; then
        basename "$f" >> "$work/poppler"
    fi
done

# pivault: one scan of all the copies; a copy counts when it has the SSN.
"$PIVAULT" scan --json -j 2 "$out" > "$work/pivault.json" || true
python3 - "$work" "$out" "$N" "${VERBOSE:-}" <<'PY'
import collections, json, os, sys
work, out, n, verbose = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
poppler = set(open(os.path.join(work, "poppler")).read().split())
pivault, status = set(), collections.Counter()
for line in open(os.path.join(work, "pivault.json")):
    v = json.loads(line)
    name = os.path.basename(v["path"])
    if v["type"] == "finding" and v["kind"] == "ssn" and v["masked"] == "***-**-1234":
        pivault.add(name)
    elif v["type"] == "status":
        status[v["status"]] += 1
names = sorted(os.listdir(out))
kinds = collections.defaultdict(lambda: [0, 0, 0])
for f in names:
    k = kinds[f.split("-", 1)[1][:-4]]
    k[0] += 1
    k[1] += f in poppler
    k[2] += f in pivault
print(f"{'damage':<10} {'copies':>6} {'pdftotext':>9} {'pivault':>7}")
for k, (c, p, v) in kinds.items():
    print(f"{k:<10} {c:>6} {p:>9} {v:>7}")
print(f"{'all':<10} {len(names):>6} {len(poppler):>9} {len(pivault):>7}")
print(f"pivault status lines: {dict(status)}")
if verbose:
    print("pdftotext only:", " ".join(sorted(poppler - pivault)))
    print("pivault only:", " ".join(sorted(pivault - poppler)))
PY
