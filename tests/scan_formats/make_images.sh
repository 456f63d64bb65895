#!/usr/bin/env bash
# Makes the image fixtures of tests/scan_ocr.rs: the staff record of
# make_office.sh (Ana Silva, SSN ***-**-1234; a phone as a decoy) drawn
# as a picture by ImageMagick (record.png, record.jpg, record.tif), and
# that picture put on a PDF page by LibreOffice (scan.pdf: a Flate-coded
# gray image; scan-jpeg.pdf: a JPEG), as a scanner's PDF holds it. The
# files in tests/fixtures/scan_images/ are this script's output, committed
# so that the tests need neither tool (only Tesseract).
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/fixtures/scan_images"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
text='Staff record

Employee: Ana Silva
Department: Accounts payable
SSN: 536-22-1234
Start date: March 4, 2019

Notes: direct deposit form on file. Call 617-555-0100 with questions.'
mkdir -p "$out"
convert -size 1400x -background white -fill black -font DejaVu-Sans -pointsize 40 \
    caption:"$text" -bordercolor white -border 40 -colorspace Gray -depth 8 "$out/record.png"
convert "$out/record.png" -quality 80 "$out/record.jpg"
convert "$out/record.png" -compress lzw "$out/record.tif"
cp "$out/record.png" "$work/scan.png"
cp "$out/record.jpg" "$work/scan-jpeg.jpg"
lo() { soffice --headless --norestore "-env:UserInstallation=file://$work/profile" --convert-to pdf --outdir "$out" "$1" >/dev/null; }
lo "$work/scan.png"
lo "$work/scan-jpeg.jpg"
ls -l "$out"
