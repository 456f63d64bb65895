//! E-mail: one message (.eml) or a mailbox (.mbox, one message after each
//! `From ` line), parsed with `mail-parser`. Transfer encodings (base64,
//! quoted-printable) and charsets are decoded by the parser. Read from
//! each message:
//!
//! * the headers people write in (Subject, From, To, Cc, Bcc, Reply-To,
//!   Sender, Comments, Keywords), decoded, as the part `headers`;
//! * each body (text/plain, or text/html with its tags dropped when there
//!   is no plain one) as the message's text; the HTML alternative of a
//!   plain body is the same text and is not read twice;
//! * every attachment and inline file as a file of its own, named by its
//!   file name (`payroll.xlsx!sheet1`), a forwarded message as a message
//!   of its own.
//!
//! In a mailbox every part is prefixed by `message N` (1-based).

use super::{member_as, Ctx, DocKind, Part};
use crate::detect::Layout;
use mail_parser::{HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

/// Reads a message or a mailbox.
pub(crate) fn read(
    kind: DocKind,
    bytes: &[u8],
    depth: u32,
    ctx: &Ctx,
) -> Result<Vec<Part>, String> {
    let parser = MessageParser::default();
    let mut out = Vec::new();
    if kind == DocKind::Eml {
        let msg = parser
            .parse(bytes)
            .ok_or_else(|| "not an e-mail message".to_string())?;
        message(&msg, depth, ctx, &mut out);
        return Ok(out);
    }
    let mut n = 0usize;
    for m in mail_parser::mailbox::mbox::MessageIterator::new(std::io::Cursor::new(bytes)) {
        let Ok(m) = m else {
            ctx.gap(format!("message {}: damaged: the rest was not read", n + 1));
            break;
        };
        n += 1;
        if n > super::MAX_MEMBERS {
            ctx.gap(format!(
                "more than {} messages: only the first {} were read",
                super::MAX_MEMBERS,
                super::MAX_MEMBERS
            ));
            break;
        }
        let Some(msg) = parser.parse(m.contents()) else {
            ctx.gap(format!("message {n}: not an e-mail message: not read"));
            continue;
        };
        let mut parts = Vec::new();
        let from = ctx.gap_count();
        message(&msg, depth, ctx, &mut parts);
        ctx.prefix_gaps(from, &format!("message {n}"));
        out.extend(parts.into_iter().map(|p| Part {
            name: Some(match p.name {
                Some(inner) => format!("message {n}!{inner}"),
                None => format!("message {n}"),
            }),
            ..p
        }));
    }
    if n == 0 {
        return Err("no messages (no line starting `From `)".into());
    }
    Ok(out)
}

/// Headers people write in; the others (Received, DKIM, Message-ID) are
/// routing and signatures.
const HEADERS: &[HeaderName<'static>] = &[
    HeaderName::Subject,
    HeaderName::From,
    HeaderName::To,
    HeaderName::Cc,
    HeaderName::Bcc,
    HeaderName::ReplyTo,
    HeaderName::Sender,
    HeaderName::Comments,
    HeaderName::Keywords,
];

fn message(msg: &Message<'_>, depth: u32, ctx: &Ctx, out: &mut Vec<Part>) {
    let mut head = String::new();
    if let Some(root) = msg.parts.first() {
        for h in &root.headers {
            if !HEADERS.contains(&h.name) {
                continue;
            }
            head.push_str(h.name.as_str());
            head.push_str(": ");
            header_text(&h.value, &mut head);
            head.push('\n');
        }
    }
    if !head.is_empty() {
        out.push(Part {
            name: Some("headers".into()),
            text: head.into_bytes(),
            layout: Layout::Plain,
        });
    }
    let mut bodies = 0usize;
    for (i, part) in msg.parts.iter().enumerate() {
        let id = i as u32;
        let is_body = msg.text_body.contains(&id);
        let is_attachment = msg.attachments.contains(&id);
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Text(t) | PartType::Html(t) if is_body && !is_attachment => {
                let text = match &part.body {
                    PartType::Html(_) => html_text(t),
                    _ => t.to_string(),
                };
                bodies += 1;
                out.push(Part {
                    name: (bodies > 1).then(|| format!("body {bodies}")),
                    text: text.into_bytes(),
                    layout: Layout::Plain,
                });
            }
            // The HTML twin of a plain body.
            PartType::Html(_) if msg.html_body.contains(&id) && !is_attachment => {}
            PartType::Message(inner) => {
                let name = part
                    .attachment_name()
                    .map_or_else(|| format!("attached message {i}"), str::to_owned);
                member_as(
                    Some(DocKind::Eml),
                    &name,
                    inner.raw_message(),
                    depth,
                    ctx,
                    out,
                );
            }
            _ => {
                let name = part
                    .attachment_name()
                    .map_or_else(|| format!("attachment {i}"), str::to_owned);
                member_as(None, &name, part.contents(), depth, ctx, out);
            }
        }
    }
}

fn header_text(v: &HeaderValue<'_>, out: &mut String) {
    match v {
        HeaderValue::Text(t) => out.push_str(t),
        HeaderValue::TextList(l) => out.push_str(&l.join(", ")),
        HeaderValue::Address(a) => {
            let all: Vec<String> = a
                .iter()
                .map(|a| match (a.name(), a.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (Some(n), None) => n.to_owned(),
                    (None, Some(e)) => e.to_owned(),
                    (None, None) => String::new(),
                })
                .collect();
            out.push_str(&all.join(", "));
        }
        _ => {}
    }
}

/// The text of an HTML body: tags dropped (a line break for the ones that
/// end a line, a tab between table cells), `<script>` and `<style>`
/// contents dropped, the common entities decoded.
pub(crate) fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        entities(&rest[..lt], &mut out);
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let closing = rest[lt + 1..].starts_with('/');
        let tag = rest[lt + 1..lt + gt]
            .trim_start_matches('/')
            .to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        rest = &rest[lt + gt + 1..];
        match name.as_str() {
            "script" | "style" if !closing => {
                let close = format!("</{name}");
                let lower = rest.to_ascii_lowercase();
                rest = lower.find(&close).map_or("", |i| &rest[i..]);
            }
            "br" => out.push('\n'),
            "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table"
            | "ul" | "ol" | "blockquote" | "pre"
                if closing =>
            {
                out.push('\n')
            }
            "td" | "th" if !closing => out.push('\t'),
            _ => {}
        }
    }
    entities(rest, &mut out);
    out
}

fn entities(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[..rest.len().min(12)].find(';');
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                _ => match ent.strip_prefix('#') {
                    Some(h) if h.starts_with(['x', 'X']) => {
                        char::from_u32(u32::from_str_radix(&h[1..], 16).ok()?)?
                    }
                    Some(d) => char::from_u32(d.parse().ok()?)?,
                    None => return None,
                },
            };
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_bodies_lose_their_tags() {
        let html = "<html><style>p{x:1}</style><p>Name: Ana&nbsp;Silva</p><table><tr><td>SSN</td><td>536&#45;22-1234</td></tr></table><script>var a=1<2;</script>end";
        assert_eq!(
            html_text(html),
            "Name: Ana Silva\n\tSSN\t536-22-1234\n\nend"
        );
    }

    #[test]
    fn quoted_printable_and_base64_are_decoded() {
        let eml = b"From: Ana Silva <ana@example.com>\r\nSubject: =?utf-8?q?SSN_536-22-1234?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSSN: 536-22-=\r\n1234 Jos=E9\r\n--b\r\nContent-Type: text/csv; name=list.csv\r\nContent-Disposition: attachment; filename=list.csv\r\nContent-Transfer-Encoding: base64\r\n\r\nbmFtZSxzc24KQW5hIFNpbHZhLDUzNjIyMTIzNAo=\r\n--b--\r\n";
        let parts = read(DocKind::Eml, eml, 0, &Ctx::new()).unwrap();
        let got: Vec<(Option<String>, String)> = parts
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    String::from_utf8_lossy(&p.text).into_owned(),
                )
            })
            .collect();
        assert!(
            got.iter().any(|(n, t)| n.as_deref() == Some("headers")
                && t.contains("Subject: SSN 536-22-1234")
                && t.contains("From: Ana Silva <ana@example.com>")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(n, t)| n.is_none() && t.contains("SSN: 536-22-1234 José")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(n, t)| n.as_deref() == Some("list.csv")
                    && t == "name,ssn\nAna Silva,536221234\n"),
            "{got:?}"
        );
    }
}
