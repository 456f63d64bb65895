//! Where in a TOML source a key is, for configuration errors that name the
//! file, line and key: serde's spans point at values, and validation errors
//! found after parsing have no span at all.

/// 1-based line and column of byte offset `pos`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| pos - i).unwrap_or(pos + 1);
    (line, col)
}

/// The key on the line holding byte `pos`, when the line is `key = ...`.
pub(crate) fn key_at(src: &str, pos: usize) -> Option<String> {
    let pos = pos.min(src.len());
    let start = src[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = src[pos..].find('\n').map(|i| pos + i).unwrap_or(src.len());
    let line = &src[start..end];
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
}

/// Finds `key = ` inside the `idx`-th `[[listener]]` (or outside listeners
/// when `idx` is None); falls back to the section header.
pub(crate) fn locate(src: &str, idx: Option<usize>, key: &str) -> (usize, usize) {
    let mut n_listener = 0usize;
    let mut in_target = idx.is_none();
    let mut header_line = 0;
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("[[listener]]") {
            in_target = idx == Some(n_listener);
            if in_target {
                header_line = i + 1;
            }
            n_listener += 1;
            continue;
        }
        if t.starts_with('[') {
            if idx.is_none() {
                in_target = true;
            } else if !t.starts_with("[[listener.") && !t.starts_with("[listener.") {
                in_target = false;
            }
            continue;
        }
        if in_target {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return (i + 1, line.len() - t.len() + 1);
                }
            }
        }
    }
    (header_line, if header_line > 0 { 1 } else { 0 })
}
