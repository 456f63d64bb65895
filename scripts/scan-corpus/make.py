#!/usr/bin/env python3
"""Makes the real-tool corpus of tests/scan_real.rs (issue 20 point 6):
documents with planted personal information and decoys, each produced by
the program that produces such files in the field, and a labels file
saying where each planted value really is.

    scripts/scan-corpus/make.py [OUT_DIR]   (default tests/fixtures/scan_real)

Why real tools: a corpus written by pivault's own authors (tests/scan_corpus)
only holds the XML they thought of. Here LibreOffice writes the Office,
OpenDocument, RTF, PDF and text files (from flat OpenDocument sources
that put PI in every place a document can hide it: odf.py), Python's
`email` and `mailbox` packages the mail, `zip`, `tar` and `gzip` the
archives, and ImageMagick renders text cards for OCR.

Labels are not assumed: each planted value is looked for in each produced
file with readers independent of pivault (verify.py). A place a format
cannot hold (comments in a PDF) becomes a "dropped" entry, a value copied
into two parts becomes two labels. Values come from a seeded generator
(values.py), so a rerun plants the same values; the tools stamp dates
into their files, so the bytes differ.

Needs: soffice (LibreOffice), convert (ImageMagick), tesseract, pdftotext
and pdfinfo (poppler-utils), zip, tar, gzip, python3.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from email.policy import SMTP
import email.generator
import mailbox
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import odf  # noqa: E402
import verify  # noqa: E402
from values import FILLER, Planter  # noqa: E402

SEED = 20  # issue 20
WRITER = [f"letter{i}" for i in range(1, 7)]
CALC = [f"book{i}" for i in range(1, 6)]
IMPRESS = [f"deck{i}" for i in range(1, 5)]
CARDS = [f"card{i}" for i in range(1, 5)]


def run(*cmd, cwd=None):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def quiet(*cmd):
    """soffice, whose stderr warns about Java on every run."""
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {r.stderr.decode()}")


def libreoffice(work: Path, fmt: str, outdir: Path, sources):
    """One soffice run converting all `sources` to `fmt` (a filter spec)."""
    outdir.mkdir(parents=True, exist_ok=True)
    quiet("soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{work}/profile",
        "--convert-to", fmt, "--outdir", str(outdir), *map(str, sources))


def sources(p: Planter, src: Path):
    """The flat OpenDocument sources, each filling every place with PI."""
    src.mkdir(parents=True)
    for kind, docs, build, ext in (("writer", WRITER, odf.writer, "fodt"), ("calc", CALC, odf.calc, "fods"),
                                   ("impress", IMPRESS, odf.impress, "fodp")):
        for i, doc in enumerate(docs):
            p.doc = doc
            (src / f"{doc}.{ext}").write_text(build(p, 3 * i))


def office(work: Path, corpus: Path, produced: dict):
    src = work / "src"
    conversions = {
        "writer": (WRITER, "fodt", ["odt", "docx:MS Word 2007 XML", "doc:MS Word 97", "rtf", "pdf", "txt:Text (encoded):UTF8"]),
        "calc": (CALC, "fods", ["ods", "xlsx:Calc MS Excel 2007 XML", "xls:MS Excel 97", "pdf", "csv:Text - txt - csv (StarCalc):44,34,76"]),
        "impress": (IMPRESS, "fodp", ["odp", "pptx:Impress MS PowerPoint 2007 XML", "ppt:MS PowerPoint 97", "pdf"]),
    }
    for kind, (docs, ext, fmts) in conversions.items():
        for fmt in fmts:
            libreoffice(work, fmt, corpus / kind, [src / f"{d}.{ext}" for d in docs])
            out_ext = fmt.split(":")[0]
            for d in docs:
                produced[f"{kind}/{d}.{out_ext}"] = [d]


def text_lines(p: Planter, doc: str, place: str, n: int, k: int):
    p.doc = doc
    lines = []
    for i in range(n):
        lines += [p.pi_sentence(place, k + i), FILLER, p.decoy(place, k + 2 * i), FILLER]
    return lines


def mail(p: Planter, corpus: Path, produced: dict):
    """E-mail written by Python's email package, as a client writes it."""
    rng = random.Random(SEED)
    email.generator.Generator._make_boundary = classmethod(lambda cls, text=None: f"=====b{rng.randrange(10**12):012d}==")
    out = corpus / "mail"
    out.mkdir(parents=True)

    def message(doc: str, k: int) -> EmailMessage:
        p.doc = doc
        m = EmailMessage(policy=SMTP)
        m["From"] = "Pat Lee <pat@firm.example>"
        m["To"] = "Payroll <payroll@firm.example>"
        m["Date"] = "Fri, 01 Mar 2024 10:00:00 +0000"
        m["Message-ID"] = f"<{doc}@firm.example>"
        m["Subject"] = "Fwd: " + p.pi_sentence("subject", k)
        return m

    def save(name: str, m: EmailMessage, docs):
        (out / name).write_bytes(m.as_bytes())
        produced[f"mail/{name}"] = docs

    m = message("plain", 0)
    m.set_content("\n".join(text_lines(p, "plain", "body", 4, 1)) + "\n")
    save("plain.eml", m, ["plain"])

    m = message("quoted", 1)
    # One long line: quoted-printable breaks it every 76 characters, so
    # soft line breaks fall inside numbers.
    m.set_content("Olá José, " + " ".join(text_lines(p, "quoted", "body (one long line)", 4, 2)) + "\n",
                  charset="iso-8859-1", cte="quoted-printable")
    save("quoted.eml", m, ["quoted"])

    m = message("base64", 2)
    m.set_content("\n".join(text_lines(p, "base64", "body", 4, 3)) + "\n", charset="utf-8", cte="base64")
    save("base64.eml", m, ["base64"])

    m = message("html", 3)
    m.set_content("<html><body>" + "".join(f"<p>{t}</p>" for t in text_lines(p, "html", "html body", 4, 4)) + "</body></html>",
                  subtype="html")
    save("html.eml", m, ["html"])

    m = message("attachments", 4)
    m.set_content("\n".join(text_lines(p, "attachments", "body", 2, 5)) + "\n")
    notes = "\n".join(text_lines(p, "attachments", "text attachment", 3, 6)) + "\n"
    m.add_attachment(notes.encode(), maintype="text", subtype="plain", filename="notes.txt", cte="base64")
    for f, sub in (("writer/letter1.docx", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
                   ("calc/book1.xlsx", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                   ("writer/letter2.pdf", "pdf")):
        m.add_attachment((corpus / f).read_bytes(), maintype="application", subtype=sub, filename=Path(f).name)
    save("attachments.eml", m, ["attachments", "letter1", "book1", "letter2"])

    m = message("forward", 5)
    m.set_content("Forwarding the message below.\n" + p.decoy("body", 7) + "\n")
    inner = message("forward", 6)
    inner.set_content("\n".join(text_lines(p, "forward", "forwarded message body", 3, 7)) + "\n")
    m.add_attachment(inner, filename="original.eml")
    save("forward.eml", m, ["forward"])

    box = mailbox.mbox(str(out / "inbox.mbox"))
    for i in range(3):
        m = message("inbox", 7 + i)
        m.set_content("\n".join(text_lines(p, "inbox", f"message {i + 1} body", 3, 8 + i)) + "\n")
        box.add(m)
    box.flush()
    box.close()
    produced["mail/inbox.mbox"] = ["inbox"]


def archives(p: Planter, work: Path, corpus: Path, produced: dict):
    """Archives made by zip, tar and gzip, deterministic in their metadata."""
    out, src = corpus / "archive", work / "arch"
    out.mkdir(parents=True)
    (src / "hr").mkdir(parents=True)
    (src / "inner").mkdir()
    (src / "hr/notes.txt").write_text("\n".join(text_lines(p, "archive-notes", "text member", 4, 1)) + "\n")
    p.doc = "archive-inner"
    rows = ["name,ssn,phone,note"]
    for i in range(3):
        rows.append(f"{p.name()},{p.plant('CSV member in a nested zip', p.ssn('bare'))},617-555-01{i}{i},{p.decoy('CSV member in a nested zip', i)}")
    (src / "inner/staff.csv").write_text("\n".join(rows) + "\n")
    for f in ("writer/letter3.docx", "calc/book2.xlsx", "impress/deck1.pptx", "writer/letter4.odt", "calc/book3.ods"):
        shutil.copy(corpus / f, src / "hr")
    run("zip", "-X", "-q", "../inner.zip", "staff.csv", cwd=src / "inner")
    run("zip", "-X", "-q", "-r", str(out / "export.zip"), "hr/notes.txt", "hr/letter3.docx", "hr/book2.xlsx", "inner.zip", cwd=src)
    produced["archive/export.zip"] = ["archive-notes", "letter3", "book2", "archive-inner"]
    tar = ["tar", "--sort=name", "--mtime=2024-03-01 00:00Z", "--owner=0", "--group=0", "--numeric-owner"]
    run(*tar, "-cf", str(out / "backup.tar"), "hr/notes.txt", "hr/letter4.odt", "hr/deck1.pptx", cwd=src)
    produced["archive/backup.tar"] = ["archive-notes", "letter4", "deck1"]
    run(*tar, "-czf", str(out / "backup.tar.gz"), "hr/book3.ods", "inner/staff.csv", cwd=src)
    produced["archive/backup.tar.gz"] = ["book3", "archive-inner"]
    shutil.copy(src / "hr/notes.txt", out / "notes.txt")
    run("gzip", "-n", "-9", "notes.txt", cwd=out)
    produced["archive/notes.txt.gz"] = ["archive-notes"]


def images(p: Planter, work: Path, corpus: Path, produced: dict):
    """Text cards rendered by ImageMagick in a large clear font, for OCR."""
    out = corpus / "image"
    out.mkdir(parents=True)
    for i, doc in enumerate(CARDS):
        p.doc = doc
        text = "\n".join([p.pi_sentence("image text", i), p.decoy("image text", i), p.pi_sentence("image text", i + 4)])
        for ext in ("png", "jpg", "tif"):
            run("convert", "-background", "white", "-fill", "black", "-font", "DejaVu-Sans", "-pointsize", "40",
                "label:" + text.replace("%", "%%"), "-bordercolor", "white", "-border", "40", "-strip", "-colorspace", "Gray", "-depth", "8", "-compress", "LZW" if ext == "tif" else "Undefined",
                str(out / f"{doc}.{ext}"))
            produced[f"image/{doc}.{ext}"] = [doc]


def fmt(name: str) -> str:
    """A file's format as the test groups them: its extension."""
    return "tar.gz" if name.endswith(".tar.gz") else name.rsplit(".", 1)[-1]


def holder(file: str, part: str) -> str:
    """The format of the document that holds a value: the innermost
    member with a document's extension (`book1.xlsx!xl/...` in an e-mail
    is held by an xlsx), else the file's own."""
    inner = [m for m in part.split("!")[:-1] if "." in m and fmt(m) in FORMATS]
    return fmt(inner[-1]) if inner else fmt(file)


FORMATS = {"docx", "xlsx", "pptx", "odt", "ods", "odp", "doc", "xls", "ppt", "rtf", "pdf", "txt", "csv",
           "eml", "mbox", "zip", "tar", "tar.gz", "gz", "png", "jpg", "tif"}


def label(p: Planter, corpus: Path, produced: dict):
    """Looks for every planted value and decoy in each produced file."""
    labels, dropped, decoys = [], [], []
    for file, docs in sorted(produced.items()):
        planted = [x for x in p.planted if x.doc in docs]
        numbers = sorted({x.pi.raw for x in planted if x.pi.raw.isdigit()})
        parts = verify.texts(file, (corpus / file).read_bytes(), numbers)
        for x in planted:
            hits = sorted({part for part, text in parts if verify.best(x.pi.raw, text)})
            entry = {"file": file, "place": x.place, "kind": x.pi.kind, "masked": x.pi.masked}
            if hits:
                labels.append(dict(entry, holder=holder(file, hits[0]), parts=hits, raw=x.pi.raw))
            else:
                dropped.append(dict(entry, holder=holder(file, "")))
        for d in (d for d in p.decoys if d.doc in docs):
            hits = sorted({part for part, text in parts if verify.best(d.value, text)})
            decoys.append({"file": file, "holder": holder(file, hits[0] if hits else ""), "place": d.place,
                           "what": d.what, "value": d.value, "parts": hits})
    return labels, dropped, decoys


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "tests/fixtures/scan_real"
    corpus = out / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    p = Planter(SEED)
    produced = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sources(p, work / "src")
        office(work, corpus, produced)
        mail(p, corpus, produced)
        archives(p, work, corpus, produced)
        images(p, work, corpus, produced)
    labels, dropped, decoys = label(p, corpus, produced)
    doc = {
        "about": "Labels of the corpus made by scripts/scan-corpus/make.py; read by tests/scan_real.rs",
        "seed": SEED,
        "files": sorted(produced),
        "labels": labels,
        "dropped": dropped,
        "decoys": decoys,
    }
    (out / "labels.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(produced)} files, {len(labels)} labels, {len(dropped)} planted values not in their file, "
          f"{sum(bool(d['parts']) for d in decoys)} decoys present")


if __name__ == "__main__":
    main()
