//! The report's three forms: Markdown (the default, readable as text),
//! JSON (the model's serde form, for tools and for `merge`), and one
//! self-contained HTML file.

pub mod html;
pub mod md;

use crate::error::Result;
use crate::model::Report;
use serde::Serialize;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Markdown.
    #[default]
    Md,
    /// JSON (stable field names, docs/COMPLIANCE.md).
    Json,
    /// One self-contained HTML file (inline CSS, no scripts).
    Html,
}

/// A machine's report in `format`.
pub fn render(r: &Report, format: Format) -> Result<String> {
    Ok(match format {
        Format::Md => md::render(r),
        Format::Json => json(r)?,
        Format::Html => html::render(r),
    })
}

/// Pretty JSON with a final newline, as every JSON form is written.
pub(crate) fn json<T: Serialize>(v: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s)
}
