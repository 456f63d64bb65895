#!/usr/bin/env bash
# Makes the office fixtures of tests/scan_formats.rs with LibreOffice:
# writes three flat OpenDocument files (plain XML, below) with PI planted
# in the places documents hide it and decoys beside it, then has
# LibreOffice save them as .odt/.rtf/.doc, .ods/.xls and .odp/.ppt into
# tests/fixtures/scan_formats/. The files there are this script's output,
# committed so that the tests need no LibreOffice; run it again after
# changing what is planted (the expected findings are in the tests).
#
#   letter.fodt: body SSN ***-**-1234 (Ana Silva), a comment with card
#     ************6467 (Liam Walsh), a footer with SSN ***-**-7890
#     (Bo Chen), hidden text with licence S12345678 (Grace Murphy), the
#     description property with SSN ***-**-4245; decoys: a phone, an
#     order number, an invalid and a famous-fake SSN, a test card.
#   staff.fods: sheet Staff with headings name/ssn/phone, a bare
#     536221234 under "ssn" (a number cell), a comment with SSN
#     ***-**-7890; sheet Cards with card ************6467; decoys: a phone
#     number cell, a 6-digit number under "ssn", a test card.
#   deck.fodp: slide 1 with SSN ***-**-1234, slide 2's speaker notes with
#     card ************6467; decoy: a phone.
#   record.txt: a staff record (Ana Silva, SSN ***-**-1234; decoy: a
#     phone), saved as record.pdf: tests/scan_damaged.rs damages copies of
#     it (the same text as benches/pdf_damage.sh).
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/fixtures/scan_formats"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ns='xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" office:version="1.3"'

cat > "$work/letter.fodt" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<office:document $ns office:mimetype="application/vnd.oasis.opendocument.text">
 <office:meta><dc:title>Staff letter</dc:title><dc:description>Reviewed for Grace Murphy, SSN 501-05-4245</dc:description></office:meta>
 <office:automatic-styles>
  <style:style style:name="Hidden" style:family="text"><style:text-properties text:display="none"/></style:style>
  <style:page-layout style:name="pm1"><style:page-layout-properties fo:page-width="21cm" fo:page-height="29.7cm"/><style:footer-style/></style:page-layout>
 </office:automatic-styles>
 <office:master-styles>
  <style:master-page style:name="Standard" style:page-layout-name="pm1">
   <style:footer><text:p>Employee: Bo Chen, SSN 412-55-7890</text:p></style:footer>
  </style:master-page>
 </office:master-styles>
 <office:body><office:text>
  <text:p>Employee: Ana Silva</text:p>
  <text:p>SSN: 536-22-1234</text:p>
  <text:p>Call 617-555-0100 about order 536221235 (not 000-12-3456, not 078-05-1120).</text:p>
  <text:p>Test card 4111 1111 1111 1111 is sample data.<office:annotation><dc:creator>Liam Walsh</dc:creator><dc:date>2024-03-01T10:00:00</dc:date><text:p>Cardholder: Liam Walsh</text:p><text:p>card 4539 1488 0343 6467</text:p></office:annotation></text:p>
  <text:p>Notes follow.</text:p>
  <text:p><text:span text:style-name="Hidden">Driver: Grace Murphy, licence S12345678</text:span></text:p>
 </office:text></office:body>
</office:document>
XML

cell() { printf '<table:table-cell office:value-type="string"><text:p>%s</text:p></table:table-cell>' "$1"; }
num() { printf '<table:table-cell office:value-type="float" office:value="%s"><text:p>%s</text:p></table:table-cell>' "$1" "$1"; }
cat > "$work/staff.fods" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<office:document $ns office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
 <office:body><office:spreadsheet>
  <table:table table:name="Staff">
   <table:table-row>$(cell name)$(cell ssn)$(cell phone)</table:table-row>
   <table:table-row>$(cell "Ana Silva")$(num 536221234)$(num 6175550100)</table:table-row>
   <table:table-row><table:table-cell office:value-type="string"><office:annotation><dc:creator>HR</dc:creator><text:p>Employee: Bo Chen, SSN 412-55-7890</text:p></office:annotation><text:p>Bo Chen</text:p></table:table-cell>$(num 123456)$(cell 617-555-0101)</table:table-row>
  </table:table>
  <table:table table:name="Cards">
   <table:table-row>$(cell "Cardholder: Liam Walsh")</table:table-row>
   <table:table-row>$(cell "card 4539 1488 0343 6467")</table:table-row>
   <table:table-row>$(cell "test card 4111 1111 1111 1111")</table:table-row>
  </table:table>
 </office:spreadsheet></office:body>
</office:document>
XML

frame() { printf '<draw:frame svg:x="1cm" svg:y="%s" svg:width="20cm" svg:height="4cm"><draw:text-box>%s</draw:text-box></draw:frame>' "$1" "$2"; }
cat > "$work/deck.fodp" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<office:document $ns office:mimetype="application/vnd.oasis.opendocument.presentation">
 <office:body><office:presentation>
  <draw:page draw:name="p1">$(frame 1cm "<text:p>Employee: Ana Silva</text:p><text:p>SSN: 536-22-1234</text:p><text:p>Call 617-555-0100</text:p>")</draw:page>
  <draw:page draw:name="p2">$(frame 1cm "<text:p>Quarterly numbers</text:p>")<presentation:notes>$(frame 15cm "<text:p>Cardholder: Liam Walsh</text:p><text:p>card 4539 1488 0343 6467</text:p>")</presentation:notes></draw:page>
 </office:presentation></office:body>
</office:document>
XML

cat > "$work/record.txt" <<'TXT'
Staff record

Employee: Ana Silva
Department: Accounts payable
SSN: 536-22-1234
Start date: March 4, 2019

Notes: direct deposit form on file. Call 617-555-0100 with questions.
TXT

lo() { soffice --headless --norestore "-env:UserInstallation=file://$work/profile" --convert-to "$1" --outdir "$out" "$2" >/dev/null; }
mkdir -p "$out"
lo odt "$work/letter.fodt"
lo rtf "$work/letter.fodt"
lo 'doc:MS Word 97' "$work/letter.fodt"
lo ods "$work/staff.fods"
lo 'xls:MS Excel 97' "$work/staff.fods"
lo odp "$work/deck.fodp"
lo 'ppt:MS PowerPoint 97' "$work/deck.fodp"
lo pdf "$work/record.txt"
ls -l "$out"
