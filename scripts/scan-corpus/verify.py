"""Reads a produced file of the real-tool corpus (see make.py) back with
tools other than pivault, to find where each planted value really is.

A converter may drop a place (a PDF has no comments, a CSV one sheet) or
copy a value into two (a sheet name into the document properties too), so
make.py labels what this finds, not what it planted. The readers here are
deliberately simple and independent of pi-scan: the XML parts of a zip
with their tags removed, the byte strings of an OLE2 (.doc/.xls/.ppt)
file in 8-bit and UTF-16, `pdftotext` and `pdfinfo`, Python's `email`,
`zipfile`, `tarfile` and `gzip`, and `tesseract` for images.

`texts(name, data, numbers)` returns [(part, text)]; `count(raw, text)`
counts a value in one text.
"""

import email
import email.policy
import gzip
import html
import io
import mailbox
import re
import struct
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

ZIP_DOCS = (".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp")
OLE_DOCS = (".doc", ".xls", ".ppt")
IMAGES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def count(raw: str, text: str) -> int:
    """Occurrences of `raw` in `text` not inside a longer number or word."""
    pat = re.compile(r"(?<![0-9A-Za-z])" + re.escape(raw) + r"(?![0-9])")
    return len(pat.findall(text))


def xml_text(xml: str) -> str:
    """The text of an XML part, read three ways, one per block: tags
    removed (a run split by tags, `536-22-</w:t>...<w:t>1234`, joins up),
    tags as spaces (cells and paragraphs stay apart), and the attribute
    values alone (sheet names, defined names, cached values)."""
    glued = html.unescape(re.sub(r"<[^>]*>", "", xml))
    spaced = html.unescape(re.sub(r"<[^>]*>", " ", xml))
    attrs = "\n".join(html.unescape(v) for n, v in re.findall(r'\s([\w:.-]+)="([^"]*)"', xml) if not n.startswith("xmlns"))
    return "\n\f\n".join((glued, spaced, ATTRS + attrs))


ATTRS = "attributes:\n"
# Marks the strings of a binary file, where a length byte after a string
# can be a digit: counted without the boundary rule.
LOOSE = "loose:\n"


def best(raw: str, text: str) -> int:
    """Occurrences of a value in one part: the better of the readings of
    `xml_text` (or of any text with readings split by form feeds), the
    attribute values only where the text holds no copy (a cell's cached
    value is also its displayed text)."""
    if text.startswith(LOOSE):
        return text.count(raw)
    readings = text.split("\n\f\n")
    shown = max(count(raw, t) for t in readings if not t.startswith(ATTRS))
    return shown or max([count(raw, t) for t in readings if t.startswith(ATTRS)] + [0])


def ole_texts(data: bytes, numbers, prefix: str = "OLE2"):
    """The strings of an OLE2 file as three parts: 8-bit runs, UTF-16LE
    runs (both alignments), and the values of `numbers` found stored as a
    double or an RK value (how .xls keeps a number cell). A string is in
    exactly one of them, so their counts add up."""
    printable = lambda s: re.sub(r"[^\x20-\x7e]", "\n", s)  # noqa: E731
    utf16 = data.decode("utf-16le", "replace") + "\n" + data[1:].decode("utf-16le", "replace")
    found = []
    for n in numbers:
        v = int(n)
        packed = [struct.pack("<d", float(v))]
        if v < 1 << 29:
            packed.append(struct.pack("<I", (v << 2) | 2))
        found += [n] * sum(data.count(b) for b in packed)
    return [(f"{prefix} 8-bit strings", LOOSE + printable(data.decode("latin-1"))),
            (f"{prefix} UTF-16 strings", LOOSE + printable(utf16)),
            (f"{prefix} number records", "\n".join(found))]


def pdf_texts(data: bytes):
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        pages = subprocess.run(["pdftotext", "-enc", "UTF-8", f.name, "-"], capture_output=True, check=True).stdout
        info = subprocess.run(["pdfinfo", "-enc", "UTF-8", f.name], capture_output=True, check=True).stdout
    out = []
    for i, page in enumerate(pages.decode().split("\f")):
        if page.strip():
            text = page + "\n\f\n" + re.sub(r"\s+", " ", page)
            out.append((f"page {i + 1}", text))
    out.append(("document information (pdfinfo)", info.decode()))
    return out


def image_text(data: bytes, suffix: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(data)
        f.flush()
        r = subprocess.run(["tesseract", f.name, "-"], capture_output=True, check=True)
    return r.stdout.decode()


def mail_texts(msg, prefix: str, numbers):
    """A message's headers, bodies and attachments (each attachment read as
    the file its name says), forwarded messages as messages of their own."""
    heads = "\n".join(f"{k}: {msg[k]}" for k in ("Subject", "From", "To", "Cc", "Comments", "Keywords") if msg[k])
    return [(prefix + "headers", heads)] + mime_texts(msg, prefix, numbers)


def mime_texts(part, prefix: str, numbers):
    ctype, name = part.get_content_type(), part.get_filename()
    if ctype == "message/rfc822":
        return [x for inner in part.get_payload() for x in mail_texts(inner, f"{prefix}{name or 'message'}!", numbers)]
    if part.is_multipart():
        return [x for sub in part.get_payload() for x in mime_texts(sub, prefix, numbers)]
    if name:
        return [(f"{prefix}{name}!{p}", t) for p, t in texts(name, part.get_payload(decode=True), numbers)]
    if ctype.startswith("text/"):
        body = part.get_content()
        if ctype == "text/html":
            body = html.unescape(re.sub(r"<[^>]*>", " ", body))
        return [(f"{prefix}{ctype} body", body)]
    return []


def texts(name: str, data: bytes, numbers=()):
    """[(part, text)] of file `name` holding `data`; `numbers` are the
    all-digit planted values to look for as binary numbers in OLE2 files."""
    low = name.lower()
    if low.endswith(ZIP_DOCS):
        out = []
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for m in z.namelist():
                body = z.read(m)
                if m.endswith((".xml", ".rels")):
                    out.append((m, xml_text(body.decode("utf-8", "replace"))))
                elif m.lower().endswith(ZIP_DOCS + OLE_DOCS):
                    out += [(f"{m}!{p}", t) for p, t in texts(m, body, numbers)]
                elif m.endswith(".bin") and body[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
                    out += ole_texts(body, numbers, m + " (OLE object)")
        return out
    if low.endswith(OLE_DOCS):
        return ole_texts(data, numbers)
    if low.endswith(".pdf"):
        return pdf_texts(data)
    if low.endswith(IMAGES):
        return [("image (tesseract)", image_text(data, Path(low).suffix))]
    if low.endswith(".eml"):
        return mail_texts(email.message_from_bytes(data, policy=email.policy.default), "", numbers)
    if low.endswith(".mbox"):
        out = []
        with tempfile.NamedTemporaryFile(suffix=".mbox") as f:
            f.write(data)
            f.flush()
            for i, m in enumerate(mailbox.mbox(f.name, factory=lambda fp: email.message_from_binary_file(fp, policy=email.policy.default))):
                out += mail_texts(m, f"message {i + 1}!", numbers)
        return out
    if low.endswith(".zip"):
        out = []
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for m in z.namelist():
                if not m.endswith("/"):
                    out += [(m if p == "" else f"{m}!{p}", t) for p, t in texts(m, z.read(m), numbers)]
        return out
    if low.endswith((".tar", ".tar.gz", ".tgz")):
        out = []
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            for m in t.getmembers():
                if m.isfile():
                    out += [(m.name if p == "" else f"{m.name}!{p}", x) for p, x in texts(m.name, t.extractfile(m).read(), numbers)]
        return out
    if low.endswith(".gz"):
        inner = Path(name).name[:-3]
        return [(inner if p == "" else f"{inner}!{p}", t) for p, t in texts(inner, gzip.decompress(data), numbers)]
    if low.endswith(".rtf"):
        text = data.decode("latin-1")
        stripped = re.sub(r"\\[a-z]+-?\d* ?|[{}]|\\\*", "", text)
        return [("", text + "\n\f\n" + stripped)]
    return [("", data.decode("utf-8", "replace"))]
