"""Writes the e-mail fixtures of tests/scan_formats.rs with Python's own
`email` and `mailbox` packages, as a mail client or an export would:

    python3 make_email.py OUT_DIR LETTER CARD

letter.eml: a multipart/alternative body (quoted-printable Latin-1 text
and its HTML twin) holding LETTER, a base64 text attachment holding CARD,
and a zip attachment (made with zipfile) holding LETTER.
inbox.mbox: message 1 has CARD in its body; message 2 has PI in its
Subject and forwards a message (message/rfc822) holding LETTER.
"""

import html
import io
import mailbox
import sys
import zipfile
from email.message import EmailMessage
from email.policy import SMTP

out, letter, card = sys.argv[1], sys.argv[2], sys.argv[3]

m = EmailMessage(policy=SMTP)
m["From"] = "Ana Silva <ana@firm.example>"
m["To"] = "Payroll <payroll@firm.example>"
m["Subject"] = "Re: order 536221235"
m.set_content("Olá José,\n" + letter, charset="iso-8859-1", cte="quoted-printable")
m.add_alternative("<p>Olá José,</p><pre>" + html.escape(letter) + "</pre>", subtype="html")
m.add_attachment(card.encode(), maintype="text", subtype="plain", filename="cards.txt", cte="base64")
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("inner/letter.txt", letter)
m.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename="archive.zip")
with open(f"{out}/letter.eml", "wb") as f:
    f.write(m.as_bytes())

box = mailbox.mbox(f"{out}/inbox.mbox")
one = EmailMessage()
one["From"] = "Liam Walsh <liam@firm.example>"
one["Subject"] = "my card"
one.set_content(card)
box.add(one)
two = EmailMessage()
two["From"] = "HR <hr@firm.example>"
two["Subject"] = "Employee Ana Silva SSN 536-22-1234"
two.set_content("Forwarding the letter; call 617-555-0100.\n")
fwd = EmailMessage()
fwd["From"] = "Ana Silva <ana@firm.example>"
fwd["Subject"] = "letter"
fwd.set_content(letter)
two.add_attachment(fwd, filename="fwd.eml")
box.add(two)
box.flush()
box.close()
