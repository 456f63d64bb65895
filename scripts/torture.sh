#!/usr/bin/env bash
# kill -9 torture of a real pivault mount (issue 18 point 3; what is
# checked and the recorded results: docs/RELIABILITY.md). A thin wrapper:
# the runs, the workload and the checks are scripts/torture.py, which also
# cleans up on exit (kills what it started, by pid, and lazily unmounts its
# mounts).
#
#   scripts/torture.sh --runs 100 --seed 1     # the recorded run (~5 min)
#   scripts/torture.sh --runs 3                # quick mode (CI)
#   scripts/torture.sh --seed 1 --first 37 --runs 1 --keep   # run 37 again
#
# PIVAULT_BIN (or --bin) names the binary; default target/release/pivault
# of this checkout. Needs root (or FUSE rights), fuse3 and python3.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
PIVAULT_BIN=${PIVAULT_BIN:-$repo/target/release/pivault}
export PIVAULT_BIN
exec python3 "$repo/scripts/torture.py" "$@"
