"""Flat OpenDocument sources (.fodt, .fods, .fodp: one plain XML file) for
the real-tool corpus (see make.py). Flat ODF is the easiest way to put
text into every place a document can hide it: LibreOffice then saves each
source in the other formats, carrying over what each format can hold.

Each builder fills every place of one kind of document with a sentence of
PI from the `Planter` (which records the place) and most places with a
decoy too, and returns the XML. Planted sentences are separated by
keyword-free filler so that one's context cannot reach another.
"""

from xml.sax.saxutils import escape, quoteattr

from values import FILLER

NS = " ".join(f'xmlns:{k}="{v}"' for k, v in {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
    "fo": "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "of": "urn:oasis:names:tc:opendocument:xmlns:of:1.2",
    "officeooo": "http://openoffice.org/2009/office",
    "number": "urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0",
}.items()) + ' office:version="1.3"'

CHANGE_INFO = "<office:change-info><dc:creator>Pat Lee</dc:creator><dc:date>2024-03-01T10:00:00</dc:date></office:change-info>"


def para(text: str, style: str = "") -> str:
    s = f' text:style-name="{style}"' if style else ""
    return f"<text:p{s}>{escape(text)}</text:p>"


def paras(*texts: str) -> str:
    """Paragraphs with filler between them and around them, so that no
    keyword of one reaches another here or in the next place."""
    return para(FILLER) + para(FILLER).join(para(t) for t in texts) + para(FILLER)


def meta(p, k: int) -> str:
    """Document properties: title, subject, description, keywords and a
    user-defined (custom) property, each with PI."""
    return (
        "<office:meta>"
        f"<dc:title>{escape(p.pi_sentence('property: title', k))}</dc:title>"
        f"<dc:subject>{escape(p.pi_sentence('property: subject', k + 1))}</dc:subject>"
        f"<dc:description>{escape(p.pi_sentence('property: description', k + 2))}</dc:description>"
        f"<meta:keyword>{escape(p.pi_sentence('property: keywords', k + 3))}</meta:keyword>"
        f'<meta:user-defined meta:name="Reviewer" meta:value-type="string">{escape(p.pi_sentence("property: custom", k + 4))}</meta:user-defined>'
        "</office:meta>"
    )


def page_layout(header: str, footer: str, master: str) -> str:
    return (
        '<style:page-layout style:name="pm1"><style:page-layout-properties fo:page-width="21cm" '
        'fo:page-height="29.7cm" fo:margin="2cm"/><style:header-style><style:header-footer-properties fo:min-height="0.5cm"/></style:header-style>'
        '<style:footer-style><style:header-footer-properties fo:min-height="0.5cm"/></style:footer-style></style:page-layout>',
        f'<office:master-styles><style:master-page style:name="{master}" style:page-layout-name="pm1">'
        f"<style:header>{header}</style:header><style:footer>{footer}</style:footer>"
        "</style:master-page></office:master-styles>",
    )


def writer(p, k: int) -> str:
    """A letter: body, a table, header, footer, footnote, endnote, comment,
    tracked insertion and deletion, hidden text, a text box, properties
    and an embedded spreadsheet, each with PI."""
    pi = p.pi_sentence
    layout, masters = page_layout(
        paras(pi("header", k), p.decoy("header", k)),
        paras(pi("footer", k + 1), p.decoy("footer", k + 1)), "Standard")
    inserted = pi("tracked insertion", k + 2)
    deleted = pi("tracked deletion", k + 3)
    cell = lambda t: f'<table:table-cell office:value-type="string"><text:p>{escape(t)}</text:p></table:table-cell>'  # noqa: E731
    table_name, table_ssn = p.name(), p.plant("table", p.ssn("dash"))
    embedded = pi("embedded spreadsheet", k + 4)
    body = [
        paras(pi("body", k + 5), p.decoy("body", k + 2), pi("body", k + 6), p.decoy("body", k + 3)),
        f'<text:p><text:change-start text:change-id="ct1"/>{escape(inserted)}<text:change-end text:change-id="ct1"/></text:p>',
        para(FILLER),
        '<text:p>An earlier paragraph was removed here.<text:change text:change-id="ct2"/></text:p>',
        para(FILLER),
        '<table:table table:name="Staff"><table:table-column table:number-columns-repeated="3"/>'
        f"<table:table-row>{cell('Name')}{cell('SSN')}{cell('Phone')}</table:table-row>"
        f"<table:table-row>{cell(table_name)}{cell(table_ssn)}{cell('617-555-0198')}</table:table-row>"
        "</table:table>",
        para(FILLER),
        f'<text:p>Details are in the notes.<text:note text:id="ftn1" text:note-class="footnote"><text:note-citation>1</text:note-citation>'
        f'<text:note-body>{paras(pi("footnote", k + 7), p.decoy("footnote", k + 4))}</text:note-body></text:note></text:p>',
        para(FILLER),
        f'<text:p>Sources are listed at the end.<text:note text:id="edn1" text:note-class="endnote"><text:note-citation>i</text:note-citation>'
        f'<text:note-body>{para(pi("endnote", k + 8))}</text:note-body></text:note></text:p>',
        para(FILLER),
        f"<text:p>Reviewed by the team.<office:annotation><dc:creator>Pat Lee</dc:creator><dc:date>2024-03-01T10:00:00</dc:date>"
        f'{paras(pi("comment", k + 9), p.decoy("comment", k + 5))}</office:annotation></text:p>',
        para(FILLER),
        f'<text:p><text:span text:style-name="Hidden">{escape(pi("hidden text", k + 10))}</text:span></text:p>',
        para(FILLER),
        '<text:p><draw:frame draw:name="Box1" text:anchor-type="paragraph" svg:width="14cm" svg:height="3cm">'
        f'<draw:text-box>{para(pi("text box", k + 11))}</draw:text-box></draw:frame></text:p>',
        para(FILLER),
        '<text:p><draw:frame draw:name="Object1" text:anchor-type="paragraph" svg:width="14cm" svg:height="2cm"><draw:object>'
        f'<office:document office:mimetype="application/vnd.oasis.opendocument.spreadsheet" {NS}><office:body><office:spreadsheet>'
        f'<table:table table:name="Sheet1"><table:table-row>{cell(embedded)}</table:table-row></table:table>'
        "</office:spreadsheet></office:body></office:document></draw:object></draw:frame></text:p>",
        para(FILLER),
        paras(p.decoy("body", k + 6), p.decoy("body", k + 7), p.decoy("body", k + 8), p.decoy("body", k + 9)),
    ]
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {NS} office:mimetype="application/vnd.oasis.opendocument.text">'
        f"{meta(p, k + 12)}"
        '<office:automatic-styles><style:style style:name="Hidden" style:family="text"><style:text-properties text:display="none"/></style:style>'
        f"{layout}</office:automatic-styles>{masters}"
        "<office:body><office:text><text:tracked-changes>"
        f'<text:changed-region text:id="ct1"><text:insertion>{CHANGE_INFO}</text:insertion></text:changed-region>'
        f'<text:changed-region text:id="ct2"><text:deletion>{CHANGE_INFO}{para(deleted)}</text:deletion></text:changed-region>'
        "</text:tracked-changes>" + "\n".join(body) + "</office:text></office:body></office:document>\n"
    )


def calc(p, k: int) -> str:
    """A workbook: cells under headings (numbers and text), a formula's
    cached value, a cell comment, a hidden row, a hidden sheet, a sheet
    named with PI, a defined name, a text shape, header, footer and
    properties."""
    pi = p.pi_sentence

    def cell(t) -> str:
        if isinstance(t, int):
            return f'<table:table-cell table:style-name="ce1" office:value-type="float" office:value="{t}"><text:p>{t}</text:p></table:table-cell>'
        return f'<table:table-cell office:value-type="string"><text:p>{escape(t)}</text:p></table:table-cell>'

    def row(*cells, hidden=False) -> str:
        v = ' table:visibility="collapse"' if hidden else ""
        return f"<table:table-row{v}>" + "".join(cell(c) for c in cells) + "</table:table-row>"

    layout, masters = page_layout(para(pi("header", k)), para(pi("footer", k + 1)), "Default")
    staff = [row("Name", "SSN", "Phone", "Driver License", "Bank Account", "Note")]
    for i in range(3):
        ssn = int(p.plant("cells: number under SSN heading", p.ssn("bare", 100)))
        lic = p.plant("cells: text under licence heading", p.licence())
        acct = int(p.plant("cells: number under bank account heading", p.account()))
        # Not decoy 9, "AWS account N": a bank account heading in the
        # table makes any number labelled "account" a bank account, as the
        # rule says (docs/SCAN.md).
        staff.append(row(p.name(), ssn, f"617-555-01{k % 10}{i}", lic, acct, p.decoy("cells", (k + i) % 9)))
    staff.append(row(p.name(), "", "", "", "", pi("cells: sentence", k + 2)))
    staff.append(row(p.name(), "", "", "", "", pi("hidden row", k + 3), hidden=True))
    # A formula whose only copy of the SSN is its cached value: the parts
    # sit apart in other cells, with words between them.
    ssn = p.plant("formula cached value", p.ssn("dash")).split("-")
    formula = ('<table:table-cell table:formula="of:=[.C8]&amp;&quot;-&quot;&amp;[.E8]&amp;&quot;-&quot;&amp;[.G8]" '
               f'office:value-type="string" office:string-value="{"-".join(ssn)}"><text:p>{"-".join(ssn)}</text:p></table:table-cell>')
    staff.append(row(""))
    staff.append("<table:table-row>" + cell("Parts") + cell("area") + cell(ssn[0]) + cell("group") + cell(ssn[1])
                 + cell("serial") + cell(ssn[2]) + "</table:table-row>")
    staff.append("<table:table-row>" + cell("Joined") + formula + "</table:table-row>")
    comment = (f'<table:table-row><table:table-cell office:value-type="string"><office:annotation><dc:creator>HR</dc:creator>'
               f'{paras(pi("cell comment", k + 4), p.decoy("cell comment", k + 3))}</office:annotation><text:p>See comment</text:p></table:table-cell></table:table-row>')
    staff.append(comment)
    shape = ('<table:shapes><draw:frame draw:name="Box1" svg:x="12cm" svg:y="6cm" svg:width="10cm" svg:height="3cm">'
             f'<draw:text-box>{para(pi("text shape", k + 5))}</draw:text-box></draw:frame></table:shapes>')
    archive = [row("Archived"), row(pi("hidden sheet", k + 6)), row(p.decoy("hidden sheet", k + 4))]
    sheet_name = "SSN " + p.plant("sheet name", p.ssn("dash"))
    defined = pi("defined name", k + 7).replace('"', "")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {NS} office:mimetype="application/vnd.oasis.opendocument.spreadsheet">'
        f"{meta(p, k + 8)}"
        '<office:automatic-styles><style:style style:name="taHidden" style:family="table" style:master-page-name="Default">'
        '<style:table-properties table:display="false"/></style:style>'
        '<style:style style:name="taShown" style:family="table" style:master-page-name="Default">'
        '<style:table-properties table:display="true"/></style:style>'
        # Wide columns and whole numbers, so that a printout (the PDF) and
        # a CSV show each value in full, not as ### or 5.5E+11.
        '<style:style style:name="co1" style:family="table-column"><style:table-column-properties style:column-width="6cm"/></style:style>'
        '<number:number-style style:name="N0"><number:number number:decimal-places="0" number:min-integer-digits="1"/></number:number-style>'
        '<style:style style:name="ce1" style:family="table-cell" style:data-style-name="N0"/>'
        f"{layout}</office:automatic-styles>{masters}"
        "<office:body><office:spreadsheet>"
        f'<table:table table:name="Staff" table:style-name="taShown">{shape}<table:table-column table:style-name="co1" table:number-columns-repeated="7"/>' + "".join(staff) + "</table:table>"
        f'<table:table table:name="Archive" table:style-name="taHidden">' + "".join(archive) + "</table:table>"
        f'<table:table table:name={quoteattr(sheet_name)} table:style-name="taShown">{row("Summary")}{row(p.decoy("sheet", k + 5))}</table:table>'
        f'<table:named-expressions><table:named-expression table:name="ReviewNote" table:base-cell-address="$Staff.$A$1" '
        f'table:expression={quoteattr("of:=" + chr(34) + defined + chr(34))}/></table:named-expressions>'
        "</office:spreadsheet></office:body></office:document>\n"
    )


def impress(p, k: int) -> str:
    """A deck: slide text, speaker notes, a hidden slide, a slide comment
    and properties."""
    pi = p.pi_sentence

    def frame(y: str, body: str) -> str:
        return (f'<draw:frame svg:x="1cm" svg:y="{y}" svg:width="24cm" svg:height="5cm">'
                f"<draw:text-box>{body}</draw:text-box></draw:frame>")

    def notes(body: str) -> str:
        return f"<presentation:notes>{frame('15cm', body)}</presentation:notes>"

    comment = ('<officeooo:annotation svg:x="2cm" svg:y="2cm" svg:width="1cm" svg:height="1cm"><dc:creator>Pat Lee</dc:creator>'
               f'<dc:date>2024-03-01T10:00:00</dc:date>{para(pi("slide comment", k))}</officeooo:annotation>')
    pages = [
        f'<draw:page draw:name="p1">{frame("1cm", paras(pi("slide", k + 1), p.decoy("slide", k)))}'
        f'{frame("8cm", para(pi("slide", k + 2)))}{notes(paras(pi("notes", k + 3), p.decoy("notes", k + 1)))}</draw:page>',
        f'<draw:page draw:name="p2">{frame("1cm", para(p.decoy("slide", k + 2)))}{comment}</draw:page>',
        f'<draw:page draw:name="p3" draw:style-name="dpHidden">{frame("1cm", para(pi("hidden slide", k + 4)))}</draw:page>',
        f'<draw:page draw:name="p4">{frame("1cm", paras(pi("slide", k + 5)))}{frame("8cm", paras(p.decoy("slide", k + 3)))}</draw:page>',
    ]
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {NS} office:mimetype="application/vnd.oasis.opendocument.presentation">'
        f"{meta(p, k + 6)}"
        '<office:automatic-styles><style:style style:name="dpHidden" style:family="drawing-page">'
        '<style:drawing-page-properties presentation:visibility="hidden"/></style:style></office:automatic-styles>'
        "<office:body><office:presentation>" + "".join(pages) + "</office:presentation></office:body></office:document>\n"
    )
