//! Reading the machines' reports back for a merge, and refusing what
//! cannot be merged before anything is written: a file that is not a
//! machine's JSON report (or is a fleet report), a schema newer than this
//! pivault reads, a report that names no machine, and the same machine
//! twice. Each error names the file and what to do.

use crate::error::{Error, Result};
use crate::model::*;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A report read far past this size is not one: a machine's report is a
/// few hundred KiB at most, and `/dev/zero` must not fill the memory.
const MAX_REPORT_BYTES: u64 = 64 << 20;

/// One checked report.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file it was read from.
    pub file: PathBuf,
    /// Its `generated`, as Unix seconds.
    pub generated: u64,
    /// The report.
    pub report: Report,
}

/// Reads and checks every file, in order; the first problem is the error.
pub fn read_reports(files: &[PathBuf]) -> Result<Vec<Input>> {
    let mut out: Vec<Input> = Vec::new();
    for f in files {
        let input = read_report(f)?;
        // Host names are case-insensitive (RFC 4343).
        if let Some(first) = out
            .iter()
            .find(|i| i.report.host.eq_ignore_ascii_case(&input.report.host))
        {
            return Err(Error::DuplicateMachine {
                host: input.report.host,
                first: first.file.clone(),
                second: f.clone(),
            });
        }
        out.push(input);
    }
    Ok(out)
}

/// Reads and checks one file.
pub fn read_report(file: &Path) -> Result<Input> {
    let read_err = |source| Error::ReadReport {
        file: file.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_REPORT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    let not = |why: String| Error::NotAReport {
        file: file.to_path_buf(),
        why,
    };
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(not(format!("larger than {} MiB", MAX_REPORT_BYTES >> 20)));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| not(format!("not JSON: {e}")))?;
    check_header(file, &v)?;
    let report: Report =
        serde_json::from_value(v).map_err(|e| not(format!("a field is wrong: {e}")))?;
    if report.host.trim().is_empty() {
        return Err(Error::NoHost {
            file: file.to_path_buf(),
            made_by: report.pivault_version,
        });
    }
    let generated = humantime::parse_rfc3339(&report.generated)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(|| not(format!("`generated` {:?} is not a time", report.generated)))?;
    Ok(Input {
        file: file.to_path_buf(),
        generated,
        report,
    })
}

/// What the report says it is, checked before its fields are, so a fleet
/// report, a newer schema or a report without a host gets its own message
/// instead of a field error.
fn check_header(file: &Path, v: &Value) -> Result<()> {
    let not = |why: String| Error::NotAReport {
        file: file.to_path_buf(),
        why,
    };
    let Some(obj) = v.as_object() else {
        return Err(not("not a JSON object".into()));
    };
    match obj.get("report").and_then(Value::as_str) {
        Some(REPORT_KIND) => {}
        Some(super::FLEET_REPORT_KIND) => {
            return Err(not(
                "it is a fleet report: merge the machines' own reports".into()
            ))
        }
        Some(other) => return Err(not(format!("its `report` is {other:?}"))),
        None => return Err(not("it has no `report` field".into())),
    }
    let made_by = obj
        .get("pivault_version")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    match obj.get("schema").and_then(Value::as_u64) {
        Some(s) if s > u64::from(SCHEMA) => {
            return Err(Error::NewerSchema {
                file: file.to_path_buf(),
                found: s,
                supported: SCHEMA,
                made_by,
            })
        }
        Some(_) => {}
        None => return Err(not("it has no `schema` number".into())),
    }
    if !obj.contains_key("host") {
        return Err(Error::NoHost {
            file: file.to_path_buf(),
            made_by,
        });
    }
    Ok(())
}
