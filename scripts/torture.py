#!/usr/bin/env python3
"""kill -9 torture of a real pivault mount (issue 18 point 3).

Each run: a fresh vault (test KDF), a foreground `pivault mount`, and four
worker processes writing through the mount, each keeping a journal on the
host of what it was told is durable:

  append    records appended to log0..log2, fsync after each
  overwrite regions of over.bin rewritten with known patterns, 1-4 per fsync
  rename    docs/doc.txt replaced by the atomic-replace pattern (write a
            temporary, fsync it, rename it over, fsync the directories)
  sqlite    db.sqlite in WAL mode, synchronous=FULL, numbered transactions
            (insert a row, delete an old one, update a counter) and now and
            then a checkpoint

After a seeded random delay the mount process (the one holding the keys and
serving FUSE) gets SIGKILL, then the workers do. The dead mount is cleared
(`fusermount3 -u -z`), `pivault fsck` runs on the vault, the vault is
mounted again and everything is read back through the new mount and
compared with the journals. See docs/RELIABILITY.md ("kill -9 torture of the
mount") for what is accepted and why.

Usage: scripts/torture.sh [--runs N] [--seed S] [--first I] [--stagger]
                          [--bin PATH] [--keep] [--json FILE]
(PIVAULT_BIN names the binary when --bin is not given.)
"""

import argparse
import atexit
import errno
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib

BLOCK = 4096  # plaintext block of the content format (FORMAT.md §6.5)
NLOG = 3  # log files the append worker writes
NREG = 40  # regions of over.bin
REGION = 3000  # bytes a region: not a multiple of the block, so regions share blocks
ROLES = ("sqlite", "append", "overwrite", "rename")  # the order they start in
PASSPHRASE = "torture horse battery staple 42"

# --------------------------------------------------------------------------
# Deterministic data: every byte a worker writes is a function of the run's
# seed and what it is (file, record, region, version), so the verifier can
# recompute what any place may hold without the worker telling it.
# --------------------------------------------------------------------------


def printable(key, n):
    """n printable bytes drawn from key (hex digits: easy to spot in a dump)."""
    return random.Random(key).randbytes((n + 1) // 2).hex()[:n].encode()


def record(seed, f, seq):
    """Append record seq of log f: mostly short, some spanning blocks."""
    rng = random.Random(f"{seed}:log{f}:size:{seq}")
    x = rng.random()
    if x < 0.85:
        n = rng.randint(20, 400)
    elif x < 0.98:
        n = rng.randint(3000, 20000)
    else:
        n = rng.randint(40000, 100000)
    body = printable(f"{seed}:log{f}:{seq}", n)
    return b"L%d #%07d %6d " % (f, seq, n) + body + b" %08x\n" % zlib.crc32(body)


def pattern(seed, r, v):
    """Version v of region r of over.bin (version 0: the preallocated one)."""
    head = b"R%02dV%07d|" % (r, v)
    return head + printable(f"{seed}:region{r}:{v}", REGION - len(head))


def doc(seed, v):
    """Version v of docs/doc.txt."""
    n = random.Random(f"{seed}:doc:size:{v}").randint(100, 30000)
    body = printable(f"{seed}:doc:{v}", n)
    return b"DOC v=%07d n=%6d\n" % (v, n) + body + b"\nEND %08x\n" % zlib.crc32(body)


def row_body(seed, n):
    """The blob of SQLite row n: 50 bytes to two overflow pages."""
    size = random.Random(f"{seed}:row:size:{n}").randint(50, 9000)
    return printable(f"{seed}:row:{n}", size)


def deleted_by(n):
    """The row transaction n deletes (keeps free pages churning), or None."""
    return n - 40 if n > 40 and (n - 40) % 5 == 0 else None


class Stream:
    """The bytes log f is meant to hold: its records back to back."""

    def __init__(self, seed, f):
        self.seed, self.f = seed, f
        self.data = bytearray()
        self.ends = []  # ends[i]: where record i ends

    def upto(self, count):
        while len(self.ends) < count:
            self.data += record(self.seed, self.f, len(self.ends))
            self.ends.append(len(self.data))
        return self.ends[count - 1] if count else 0


# --------------------------------------------------------------------------
# Journals. A worker writes an intent line ("I ...") before an operation and
# an acknowledgement ("A ...") once the mount said it is durable (fsync,
# COMMIT returned). Acknowledgements are fsync'd as the issue asks; intents
# are only written: this test kills processes, not the machine, so a
# write(2) that returned is in the host's page cache whatever happens to the
# writer, and an intent only widens what the verifier accepts.
# --------------------------------------------------------------------------


class Journal:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def intent(self, line):
        os.write(self.fd, f"I {line}\n".encode())

    def ack(self, line):
        os.write(self.fd, f"A {line}\n".encode())
        os.fsync(self.fd)


def read_journal(path):
    try:
        with open(path, encoding="ascii") as fh:
            lines = fh.read().split("\n")
    except FileNotFoundError:
        return []
    # A line cut by the kill (no newline) was never acknowledged.
    return [ln.split() for ln in lines[:-1] if ln]


def journal_state(jdir):
    """What each worker had acknowledged, and what it had in flight, at the kill."""
    st = {}
    # append: records 0..acked[f]-1 of log f are durable; in flight: record acked[f].
    acked, inflight = [0] * NLOG, [False] * NLOG
    for ln in read_journal(os.path.join(jdir, "append.jnl")):
        if ln[1] == "ready":
            continue
        f, seq = int(ln[1]), int(ln[2])
        if ln[0] == "A":
            acked[f] = seq + 1
            inflight[f] = False
        else:
            inflight[f] = True
    st["append"] = {"acked": acked, "inflight": inflight}
    # overwrite: the last acknowledged version of each region, the earlier
    # ones, and the one in flight.
    ver, fly, older = [0] * NREG, {}, [[] for _ in range(NREG)]
    for ln in read_journal(os.path.join(jdir, "overwrite.jnl")):
        if ln[1] == "ready":
            continue
        if ln[0] == "I":
            fly[int(ln[1])] = int(ln[2])
        else:
            for item in ln[1:]:
                r, v = map(int, item.split(":"))
                older[r].append(ver[r])
                ver[r] = v
                fly.pop(r, None)
    st["overwrite"] = {"acked": ver, "inflight": fly, "older": older}
    # rename: the last version acknowledged (0 once ready), the one in flight and its temporary.
    racked, rfly = None, None
    for ln in read_journal(os.path.join(jdir, "rename.jnl")):
        if ln[0] == "A":
            racked, rfly = (0 if ln[1] == "ready" else int(ln[1])), None
        else:
            rfly = (int(ln[1]), ln[2])
    st["rename"] = {"acked": racked, "inflight": rfly}
    # sqlite: the last transaction committed; a transaction or checkpoint in flight.
    committed, txn, ckpt, ready = 0, None, False, False
    for ln in read_journal(os.path.join(jdir, "sqlite.jnl")):
        if ln[1] == "ready":
            ready = True
        elif ln[1] == "C":
            ckpt = ln[0] == "I"
        elif ln[0] == "A":
            committed, txn = int(ln[1]), None
        else:
            txn = int(ln[1])
    st["sqlite"] = {"committed": committed, "inflight": txn, "checkpoint": ckpt, "ready": ready}
    return st


def files_being_written(st):
    """Paths (relative to the mount) a worker was writing at the kill: the only
    places fsck damage is allowed. db.sqlite-shm is always among them: SQLite
    writes its shared-memory index through mmap at any time, never syncs it,
    and rebuilds it when the first connection opens the database."""
    out = {f"log{f}" for f in range(NLOG) if st["append"]["inflight"][f]}
    if st["overwrite"]["inflight"]:
        out.add("over.bin")
    if st["rename"]["inflight"]:
        out.add(st["rename"]["inflight"][1])
    s = st["sqlite"]
    out.add("db.sqlite-shm")
    if s["inflight"] is not None or s["checkpoint"] or not s["ready"]:
        out |= {"db.sqlite", "db.sqlite-wal"}
    return out


# --------------------------------------------------------------------------
# Workers (run inside the mount until killed).
# --------------------------------------------------------------------------


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def worker(role, mnt, jdir, seed):
    rng = random.Random(f"{seed}:{role}:ops")
    j = Journal(os.path.join(jdir, f"{role}.jnl"))
    if role == "append":
        fds = []
        for f in range(NLOG):
            fds.append(os.open(os.path.join(mnt, f"log{f}"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
        fsync_dir(mnt)
        j.ack("ready")
        seq = [0] * NLOG
        while True:
            f = rng.randrange(NLOG)
            j.intent(f"{f} {seq[f]}")
            write_all(fds[f], record(seed, f, seq[f]))
            (os.fdatasync if rng.random() < 0.5 else os.fsync)(fds[f])
            j.ack(f"{f} {seq[f]}")
            seq[f] += 1
    elif role == "overwrite":
        fd = os.open(os.path.join(mnt, "over.bin"), os.O_RDWR | os.O_CREAT, 0o644)
        write_all(fd, b"".join(pattern(seed, r, 0) for r in range(NREG)))
        os.fsync(fd)
        fsync_dir(mnt)
        j.ack("ready")
        v = 0
        while True:
            done = []
            for r in rng.sample(range(NREG), rng.randint(1, 4)):
                v += 1
                j.intent(f"{r} {v}")
                os.pwrite(fd, pattern(seed, r, v), r * REGION)
                done.append(f"{r}:{v}")
            (os.fdatasync if rng.random() < 0.5 else os.fsync)(fd)
            j.ack(" ".join(done))
    elif role == "rename":
        docs, staging = os.path.join(mnt, "docs"), os.path.join(mnt, "staging")
        os.mkdir(docs)
        os.mkdir(staging)
        fsync_dir(mnt)

        def replace(v, tmpdir):
            tmp = os.path.join(mnt, tmpdir, "doc.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            data = doc(seed, v)
            cut = sorted(rng.randint(0, len(data)) for _ in range(2))
            for a, b in zip([0] + cut, cut + [len(data)]):
                write_all(fd, data[a:b])
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(docs, "doc.txt"))
            fsync_dir(docs)
            if tmpdir != "docs":
                fsync_dir(os.path.join(mnt, tmpdir))

        replace(0, "docs")
        j.ack("ready")
        v = 0
        while True:
            v += 1
            tmpdir = rng.choice(["docs", "staging"])
            j.intent(f"{v} {tmpdir}/doc.tmp")
            replace(v, tmpdir)
            j.ack(f"{v}")
    elif role == "sqlite":
        con = sqlite3.connect(os.path.join(mnt, "db.sqlite"), isolation_level=None, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE t(n INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        con.execute("CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        con.execute("INSERT INTO meta VALUES('last', 0)")
        fsync_dir(mnt)
        j.ack("ready")
        n = 0
        while True:
            n += 1
            j.intent(f"{n}")
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO t VALUES(?, ?)", (n, row_body(seed, n)))
            if deleted_by(n) is not None:
                con.execute("DELETE FROM t WHERE n = ?", (deleted_by(n),))
            con.execute("UPDATE meta SET v = ? WHERE k = 'last'", (n,))
            con.execute("COMMIT")
            j.ack(f"{n}")
            if n % 97 == 0:
                j.intent("C")
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                j.ack("C")


# --------------------------------------------------------------------------
# Verification (through the new mount). "lost": something acknowledged that
# does not read back (missing, cut short, EIO, an older version). "wrong":
# bytes that read back but are not what was ever written there.
# --------------------------------------------------------------------------


def read_blocks(path):
    """The file's bytes and the indexes of the blocks that failed to read (EIO)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        out, bad = bytearray(size), []
        for off in range(0, size, BLOCK):
            try:
                chunk = os.pread(fd, min(BLOCK, size - off), off)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                bad.append(off // BLOCK)
                continue
            out[off : off + len(chunk)] = chunk
        return out, bad
    finally:
        os.close(fd)


def tail_ok(got, want):
    """Bytes past the last acknowledged write, page by page: each (4 KiB,
    aligned as the file) is what was being written or all zeros: a page the
    kernel's write-back had not sent yet when the write past it arrived is a
    hole (a file grown past unwritten data reads zeros there, as on any
    POSIX file system after a crash). Never other bytes."""
    return got == want or not any(got)


def verify(mnt, jdir, seed):
    st = journal_state(jdir)
    lost, wrong = [], []
    stats = {"tail_zero_pages": 0, "tail_eio_blocks": 0, "torn_blocks": 0}

    # Entries: nothing but what the workers make.
    allowed = {
        "": {"log0", "log1", "log2", "over.bin", "docs", "staging", "db.sqlite", "db.sqlite-wal", "db.sqlite-shm"},
        "docs": {"doc.txt", "doc.tmp"},
        "staging": {"doc.tmp"},
    }
    for d, names in allowed.items():
        try:
            extra = set(os.listdir(os.path.join(mnt, d))) - names
        except OSError as e:
            lost.append(f"{d or '/'}: cannot list ({e})")
            continue
        if extra:
            wrong.append(f"{d or '/'}: unexpected entries {sorted(extra)}")

    # (a) appends.
    a = st["append"]
    stats["appends_acked"] = sum(a["acked"])
    for f in range(NLOG):
        name = f"log{f}"
        acked = a["acked"][f]
        s = Stream(seed, f)
        end = s.upto(acked)
        limit = s.upto(acked + 1) if a["inflight"][f] else end
        try:
            got, bad = read_blocks(os.path.join(mnt, name))
        except OSError as e:
            lost.append(f"{name}: {e.strerror} ({acked} records acknowledged)")
            continue
        if len(got) < end:
            lost.append(f"{name}: {len(got)} bytes, {end} acknowledged ({acked} records)")
        if len(got) > limit:
            wrong.append(f"{name}: {len(got)} bytes, at most {limit} ever written")
        # One finding a file and kind, however many blocks it covers.
        unreadable, differ, garbage = [], [], []
        for off in range(0, min(len(got), limit), BLOCK):
            stop = min(off + BLOCK, len(got), limit)
            if off // BLOCK in bad:
                if off < end:
                    unreadable.append((off, min(stop, end)))
                else:
                    stats["tail_eio_blocks"] += 1
                continue
            acked_to = min(stop, end)
            if off < acked_to and got[off:acked_to] != s.data[off:acked_to]:
                differ.append(off)
            if stop > max(off, end):
                lo = max(off, end)
                if not tail_ok(got[lo:stop], s.data[lo:stop]):
                    garbage.append(lo)
                elif got[lo:stop] != s.data[lo:stop]:
                    stats["tail_zero_pages"] += 1
        if unreadable:
            n = sum(b - a for a, b in unreadable)
            lost.append(f"{name}: {n} acknowledged bytes unreadable (EIO) in blocks {[a // BLOCK for a, _ in unreadable][:8]}, bytes {unreadable[0][0]}..{unreadable[-1][1]}")
        if differ:
            wrong.append(f"{name}: acknowledged bytes differ from what was written in {len(differ)} blocks, from byte {differ[0]}")
        if garbage:
            wrong.append(f"{name}: bytes past the last acknowledged record, from {garbage[0]}, are neither the record being written nor zeros")

    # (b) overwrites.
    o = st["overwrite"]
    stats["overwrite_regions_in_flight"] = len(o["inflight"])
    try:
        got, bad = read_blocks(os.path.join(mnt, "over.bin"))
        if len(got) != NREG * REGION:
            wrong.append(f"over.bin: {len(got)} bytes, always {NREG * REGION}")
        for r in range(NREG):
            lo, hi = r * REGION, (r + 1) * REGION
            good = [pattern(seed, r, o["acked"][r])]
            if r in o["inflight"]:
                good.append(pattern(seed, r, o["inflight"][r]))
            # Block by block: a write in flight may have reached some blocks
            # of the region and not others (the kernel sends pages apart),
            # but within a block it is all old or all new.
            b = lo // BLOCK * BLOCK
            while b < hi:
                s, e = max(b, lo), min(b + BLOCK, hi)
                if b // BLOCK in bad:
                    # A block a write in flight was rewriting may fail
                    # authentication (torn): damage being written, not a
                    # loss, for the region being rewritten. Any other
                    # region's acknowledged bytes in it are lost.
                    if r in o["inflight"]:
                        stats["torn_blocks"] += 1
                    else:
                        lost.append(f"over.bin: region {r} (acknowledged v{o['acked'][r]}, no write in flight) bytes {s}..{e} unreadable (block {b // BLOCK})")
                elif not any(got[s:e] == g[s - lo : e - lo] for g in good):
                    back = [v for v in o["older"][r] if got[s:e] == pattern(seed, r, v)[s - lo : e - lo]]
                    if back:
                        lost.append(f"over.bin: region {r} bytes {s}..{e} hold v{back[-1]}, v{o['acked'][r]} was acknowledged")
                    else:
                        wrong.append(f"over.bin: region {r} bytes {s}..{e} are no version written there (acknowledged v{o['acked'][r]})")
                b += BLOCK
    except OSError as e:
        lost.append(f"over.bin: {e.strerror}")

    # (c) the atomically replaced file.
    rn = st["rename"]
    if rn["acked"] is not None:
        stats["renames_acked"] = rn["acked"]
        ok = [rn["acked"]] + ([rn["inflight"][0]] if rn["inflight"] else [])
        try:
            got, bad = read_blocks(os.path.join(mnt, "docs/doc.txt"))
            if bad:
                lost.append(f"docs/doc.txt: blocks {bad} unreadable")
            elif not any(bytes(got) == doc(seed, v) for v in ok):
                older = [v for v in range(rn["acked"]) if bytes(got) == doc(seed, v)]
                if older:
                    lost.append(f"docs/doc.txt: holds v{older[0]}, v{rn['acked']} was acknowledged")
                else:
                    wrong.append(f"docs/doc.txt: {len(got)} bytes that are no version (acknowledged v{rn['acked']}), e.g. a mix")
        except OSError as e:
            lost.append(f"docs/doc.txt: {e.strerror} (v{rn['acked']} acknowledged)")
        for tmp in ("docs/doc.tmp", "staging/doc.tmp"):
            p = os.path.join(mnt, tmp)
            if not os.path.lexists(p):
                continue
            if not rn["inflight"] or rn["inflight"][1] != tmp:
                wrong.append(f"{tmp}: exists but no replacement was in flight through it")
                continue
            try:
                got, bad = read_blocks(p)
            except OSError as e:
                # Killed before its header was written (the host file is
                # empty): it does not open. Allowed for a file being written.
                if e.errno != errno.EIO:
                    raise
                stats["tail_eio_blocks"] += 1
                continue
            want = doc(seed, rn["inflight"][0])
            for off in range(0, len(got), BLOCK):
                if off // BLOCK in bad:
                    stats["tail_eio_blocks"] += 1
                elif not tail_ok(got[off : off + BLOCK], want[off : off + BLOCK]) or len(got) > len(want):
                    wrong.append(f"{tmp}: bytes {off}.. are not the version being written")
                    break

    # (d) SQLite, in its own process: a damaged -shm could raise SIGBUS in the reader.
    sq = st["sqlite"]
    stats["txns_committed"] = sq["committed"]
    if sq["ready"]:
        cmd = [sys.executable, os.path.abspath(__file__), "_verify_sqlite", os.path.join(mnt, "db.sqlite"), str(seed), json.dumps(sq)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            lost.append(f"db.sqlite: the check failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
        else:
            r = json.loads(p.stdout)
            lost += r["lost"]
            wrong += r["wrong"]
            stats["sqlite_rows"] = r["rows"]
    return {"lost": lost, "wrong": wrong, "stats": stats}


def verify_sqlite(path, seed, sq):
    lost, wrong = [], []
    c, fly = sq["committed"], sq["inflight"]
    con = sqlite3.connect(path, isolation_level=None)
    try:
        ic = [r[0] for r in con.execute("PRAGMA integrity_check")]
        if ic != ["ok"]:
            # Detected, so not silent: what was committed is not intact.
            lost.append(f"db.sqlite: integrity_check says {ic[:5]}")
        rows = dict(con.execute("SELECT n, body FROM t"))
        last = con.execute("SELECT v FROM meta WHERE k = 'last'").fetchone()[0]
    except sqlite3.Error as e:
        lost.append(f"db.sqlite: {e} ({c} transactions committed)")
        return {"lost": lost, "wrong": wrong, "rows": 0}
    # The transaction in flight at the kill either happened whole (its row
    # is there) or not at all; either way the rows must be exactly those of
    # the transactions 1..k: row m exists iff m <= k and no transaction
    # <= k deleted it.
    k = fly if fly is not None and fly in rows else c
    gone = {deleted_by(t) for t in range(1, k + 1)} - {None}
    missing = [m for m in range(1, k + 1) if m not in gone and m not in rows]
    if missing:
        lost.append(f"db.sqlite: {len(missing)} committed rows missing (first {missing[:5]}), {c} transactions committed")
    back = sorted(m for m in gone if m in rows)
    if back:
        # Deleted by a committed transaction: the delete was lost; by the
        # one in flight whose insert is there: half a transaction.
        (lost if back[0] + 40 <= c else wrong).append(f"db.sqlite: rows deleted by transactions up to {k} are there: {back[:5]}")
    extra = [m for m in rows if m > k]
    if extra:
        wrong.append(f"db.sqlite: rows never committed nor in flight: {sorted(extra)[:5]}")
    bad = [m for m, b in rows.items() if b != row_body(seed, m)]
    if bad:
        wrong.append(f"db.sqlite: rows whose content differs: {sorted(bad)[:5]}")
    if last != k:
        (lost if last < c else wrong).append(f"db.sqlite: meta.last = {last}, rows say {k} ({c} committed)")
    return {"lost": lost, "wrong": wrong, "rows": len(rows)}


# --------------------------------------------------------------------------
# The driver.
# --------------------------------------------------------------------------

LIVE = {"procs": [], "mounts": []}  # what cleanup() must end: only what we started


def cleanup():
    for p in LIVE["procs"]:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    for m in LIVE["mounts"]:
        subprocess.run(["fusermount3", "-u", "-z", m], capture_output=True, check=False)
    LIVE["procs"].clear()
    LIVE["mounts"].clear()


def is_mounted(mnt):
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return any(line.split()[4] == mnt for line in fh)


def start_mount(binary, vault, mnt, pw, log):
    """A foreground mount: the process we start is the one that unseals, holds
    the keys and serves FUSE (no fork), so its pid is the one to kill."""
    p = subprocess.Popen(
        [binary, "mount", vault, mnt, "--passphrase-file", pw],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    LIVE["procs"].append(p)
    LIVE["mounts"].append(mnt)
    deadline = time.monotonic() + 30
    while not is_mounted(mnt):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mount did not come up (exit {p.poll()}); see {log.name}")
        time.sleep(0.02)
    return p


def stop_mount(binary, p, mnt):
    subprocess.run([binary, "unmount", mnt], capture_output=True, timeout=60, check=True)
    p.wait(timeout=60)
    LIVE["procs"].remove(p)
    LIVE["mounts"].remove(mnt)


def one_run(args, i, workdir):
    seed = f"{args.seed}:{i}"
    rng = random.Random(f"{seed}:driver")
    rundir = os.path.join(workdir, f"run-{i:03d}")
    vault, mnt, jdir = (os.path.join(rundir, d) for d in ("vault", "mnt", "journal"))
    os.makedirs(mnt)
    os.makedirs(jdir)
    pw = os.path.join(rundir, "pass")
    with open(pw, "w", encoding="ascii") as fh:
        fh.write(PASSPHRASE + "\n")
    # Both suites: their blocks (4124 and 4136 bytes on disk) cross host pages in different places.
    cipher = "aes-gcm" if i % 2 == 0 else "xchacha"
    log = open(os.path.join(rundir, "pivault.log"), "w", encoding="utf-8")  # noqa: SIM115 (open for the whole run)
    res = {"run": i, "seed": seed, "cipher": cipher, "dir": rundir}
    try:
        subprocess.run(
            [args.bin, "init", vault, "--cipher", cipher, "--insecure-test-kdf", "--passphrase-file", pw],
            stdout=log, stderr=log, check=True, timeout=60,
        )
        mount = start_mount(args.bin, vault, mnt, pw, log)

        # The workers, each its own process, writing their journals. With
        # --stagger each sets up (creates its files) before the next starts;
        # otherwise all at once.
        workers = []

        def ready(role):
            return any(ln[1:] == ["ready"] for ln in read_journal(os.path.join(jdir, f"{role}.jnl")))

        def wait_ready(roles):
            deadline = time.monotonic() + 30
            while not all(ready(r) for r in roles):
                dead = [r for r, w in zip(ROLES, workers) if w.poll() is not None]
                if dead or time.monotonic() > deadline:
                    why = {}
                    for r in dead:
                        with open(os.path.join(jdir, f"{r}.err"), encoding="utf-8") as fh:
                            why[r] = fh.read().strip()
                    raise RuntimeError(f"workers did not get ready: {why or 'timeout'}")
                time.sleep(0.01)

        for role in ROLES:
            with open(os.path.join(jdir, f"{role}.err"), "w", encoding="utf-8") as err:
                w = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "_worker", role, mnt, jdir, seed],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                )
            LIVE["procs"].append(w)
            workers.append(w)
            if args.stagger:
                wait_ready([role])
        wait_ready(ROLES)

        # The kill: at a seeded random moment of the steady workload.
        delay = rng.uniform(0.05, args.max_delay)
        res["kill_after_s"] = round(delay, 3)
        time.sleep(delay)
        if mount.poll() is not None:
            raise RuntimeError(f"the mount ended by itself (exit {mount.returncode}) before the kill")
        mount.kill()  # SIGKILL
        mount.wait()
        for w in workers:
            w.kill()
        for w in workers:
            w.wait()
            LIVE["procs"].remove(w)
        LIVE["procs"].remove(mount)
        # The dead mount: the kernel still shows it (ENOTCONN); clear it.
        subprocess.run(["fusermount3", "-u", "-z", mnt], check=True, capture_output=True, timeout=60)
        LIVE["mounts"].remove(mnt)

        st = journal_state(jdir)
        writing = files_being_written(st)
        res["being_written"] = sorted(writing)

        # fsck, offline.
        p = subprocess.run(
            [args.bin, "fsck", vault, "--json", "--passphrase-file", pw],
            capture_output=True, text=True, timeout=600, check=False,
        )
        log.write(p.stderr)
        res["fsck_exit"] = p.returncode
        report = json.loads(p.stdout)
        res["fsck_damaged"] = report["damaged"]
        # Files the kill left half grown: not damage; the remount undoes
        # them (FORMAT.md §6.4), and the verifier then checks their data.
        res["fsck_interrupted"] = report.get("interrupted", [])
        res["damage_allowed"], res["damage_elsewhere"] = [], []
        for d in report["damaged"]:
            path = (d.get("path") or "").lstrip("/")
            (res["damage_allowed"] if path in writing else res["damage_elsewhere"]).append(d)
        if p.returncode not in (0, 3) or (p.returncode == 3) != bool(report["damaged"]):
            res["damage_elsewhere"].append({"path": None, "reason": f"fsck exit {p.returncode} with {len(report['damaged'])} damaged"})

        # Remount and read everything back.
        mount = start_mount(args.bin, vault, mnt, pw, log)
        p = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "_verify", mnt, jdir, seed],
            capture_output=True, text=True, timeout=600, check=False,
        )
        if p.returncode != 0:
            raise RuntimeError(f"verifier failed: {p.stderr.strip()[-2000:]}")
        res.update(json.loads(p.stdout))
        stop_mount(args.bin, mount, mnt)
    except Exception as e:  # noqa: BLE001 (a run that cannot finish is a failed run, reported)
        res["error"] = f"{type(e).__name__}: {e}"
        cleanup()
    finally:
        log.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first", type=int, default=0, help="number of the first run (to repeat one run of a seed)")
    ap.add_argument("--max-delay", type=float, default=3.0, help="kill within this many seconds of the workload starting")
    ap.add_argument("--stagger", action="store_true", help="let each worker create its files before the next starts")
    ap.add_argument("--bin", default=os.environ.get("PIVAULT_BIN", "target/release/pivault"))
    ap.add_argument("--keep", action="store_true", help="keep every run's directory (failed runs are always kept)")
    ap.add_argument("--json", help="write every run's result to this file")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"torture: no pivault binary at {args.bin} (build it, or set PIVAULT_BIN / --bin)")
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        sys.exit("torture: needs /dev/fuse and fusermount3 (apt-get install fuse3)")

    workdir = tempfile.mkdtemp(prefix="pivault-torture-")
    atexit.register(cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(130))
    started = time.monotonic()
    mode = ", staggered set-up" if args.stagger else ""
    print(f"torture: {args.runs} runs, seed {args.seed}{mode}, {args.bin}, in {workdir}", flush=True)
    results, kept = [], []
    for i in range(args.first, args.first + args.runs):
        r = one_run(args, i, workdir)
        results.append(r)
        bad = r.get("error") or r.get("lost") or r.get("wrong") or r.get("damage_elsewhere")
        st = r.get("stats", {})
        print(
            f"run {i}: {r['cipher']}, kill at {r.get('kill_after_s', '-')} s; acked {st.get('appends_acked', '-')} appends, "
            f"{st.get('renames_acked', '-')} renames, {st.get('txns_committed', '-')} txns; "
            f"fsck exit {r.get('fsck_exit', '-')}, {len(r.get('fsck_interrupted', []))} interrupted grows, "
            f"{len(r.get('damage_allowed', []))} damaged being written, "
            f"{len(r.get('damage_elsewhere', []))} elsewhere; lost {len(r.get('lost', []))}, wrong {len(r.get('wrong', []))}"
            + (f"; ERROR {r['error']}" if r.get("error") else ""),
            flush=True,
        )
        for k in ("lost", "wrong", "damage_elsewhere", "damage_allowed"):
            for item in r.get(k, [])[:10]:
                print(f"    {k}: {item}", flush=True)
        if bad or args.keep:
            kept.append(r["dir"])
        else:
            shutil.rmtree(r["dir"], ignore_errors=True)

    n = len(results)
    errors = sum(1 for r in results if r.get("error"))
    damaged = [r for r in results if r.get("fsck_damaged")]
    allowed = sum(len(r.get("damage_allowed", [])) for r in results)
    elsewhere = sum(len(r.get("damage_elsewhere", [])) for r in results)
    lost = sum(len(r.get("lost", [])) for r in results)
    wrong = sum(len(r.get("wrong", [])) for r in results)
    lost_runs = sum(1 for r in results if r.get("lost"))
    wrong_runs = sum(1 for r in results if r.get("wrong"))
    keys = ("appends_acked", "renames_acked", "txns_committed", "tail_zero_pages", "tail_eio_blocks", "torn_blocks")
    tot = {k: sum(r.get("stats", {}).get(k, 0) for r in results) for k in keys}
    print(f"\ntorture summary (seed {args.seed}{mode}, runs {args.first}..{args.first + n - 1}, {time.monotonic() - started:.0f} s):")
    print(f"  runs {n}, kills {sum(1 for r in results if 'kill_after_s' in r)}, runs that could not finish {errors}")
    print(f"  fsck clean {sum(1 for r in results if r.get('fsck_exit') == 0)}, damaged {len(damaged)}: {allowed} entries in files being written, {elsewhere} elsewhere")
    for r in damaged:
        print(f"    run {r['run']}: " + "; ".join(f"{d.get('path')}: {d.get('reason')}" for d in r["fsck_damaged"]))
    interrupted = sum(len(r.get("fsck_interrupted", [])) for r in results)
    print(f"  interrupted grows fsck listed (undone by the remount): {interrupted} in {sum(1 for r in results if r.get('fsck_interrupted'))} runs")
    print(f"  acknowledged and checked: {tot['appends_acked']} appends, {tot['renames_acked']} replacements, {tot['txns_committed']} SQLite transactions, every overwrite region")
    print(f"  past the last acknowledged write: {tot['tail_zero_pages']} pages read as zeros, {tot['tail_eio_blocks']} blocks unreadable; over.bin blocks torn by a write in flight: {tot['torn_blocks']}")
    print(f"  lost {lost} (in {lost_runs} runs), silently wrong {wrong} (in {wrong_runs} runs)")
    for r in results:
        if r.get("error"):
            print(f"    run {r['run']} could not finish: {r['error'][:300]}")
    if kept:
        print(f"  kept for inspection: {', '.join(kept)}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)
    return 1 if (lost or wrong or elsewhere or errors) else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        try:
            worker(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
        except (OSError, sqlite3.Error) as e:
            # Expected once the mount is gone (ENOTCONN, ECONNABORTED);
            # before that, the reason the run could not start.
            print(f"worker {sys.argv[2]}: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)
    elif len(sys.argv) > 1 and sys.argv[1] == "_verify":
        print(json.dumps(verify(sys.argv[2], sys.argv[3], sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "_verify_sqlite":
        print(json.dumps(verify_sqlite(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))))
    else:
        sys.exit(main())
