//! The state shared by everything read out of one file on disk: the
//! inflation budget (so that nesting does not multiply the zip-bomb
//! cap), the time limit, the gaps that make a file partial, and the
//! findings made while parts were streamed or images read by OCR.
//!
//! Readers take a [`Ctx`] and wrap their input in [`Ctx::limited`] (or
//! [`Ctx::timed`]): the reader ends, reading 0, once the budget or the
//! time limit is reached, and [`Ctx::stopped`] says which, so every
//! format stops the same way and says why in the same words.

use super::{End, Extracted, Part, MAX_ENTRY, MAX_INFLATED};
use crate::detect::TextFinding;
use std::cell::{Cell, RefCell};
use std::io::Read;
use std::time::{Duration, Instant};

/// Why reading a file stopped before its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The inflation budget is spent.
    Budget,
    /// The per-file time limit passed.
    Time,
}

/// State shared by everything read out of one file on disk.
pub(crate) struct Ctx {
    /// Bytes that may still be inflated or decoded.
    budget: Cell<u64>,
    gaps: RefCell<Vec<String>>,
    found: RefCell<Vec<(Option<String>, TextFinding)>>,
    /// When reading this file must stop, and the limit that sets it.
    deadline: Option<(Instant, Duration)>,
    stop: Cell<Option<Stop>>,
    /// Whether images are read (OCR), and what they yielded.
    ocr: crate::ocr::Ocr,
    ocr_found: RefCell<Vec<(Option<String>, crate::ocr::OcrFinding)>>,
}

impl Ctx {
    pub(crate) fn new() -> Self {
        Self::with_timeout(None)
    }

    /// A context whose reads stop once `timeout` has passed.
    pub(crate) fn with_timeout(timeout: Option<Duration>) -> Self {
        Ctx {
            budget: Cell::new(MAX_INFLATED),
            gaps: RefCell::new(Vec::new()),
            found: RefCell::new(Vec::new()),
            deadline: timeout.map(|t| (Instant::now() + t, t)),
            stop: Cell::new(None),
            ocr: crate::ocr::Ocr::Off("not asked for"),
            ocr_found: RefCell::new(Vec::new()),
        }
    }

    /// This context, reading images with `ocr`.
    pub(crate) fn with_ocr(mut self, ocr: crate::ocr::Ocr) -> Self {
        self.ocr = ocr;
        self
    }

    /// Whether images are read, and how.
    pub(crate) fn ocr(&self) -> &crate::ocr::Ocr {
        &self.ocr
    }

    /// When reading this file must stop, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|(d, _)| d)
    }

    /// Records findings read by OCR in the part `name`.
    pub(crate) fn ocr_found(&self, name: Option<String>, found: Vec<crate::ocr::OcrFinding>) {
        self.ocr_found
            .borrow_mut()
            .extend(found.into_iter().map(|f| (name.clone(), f)));
    }

    /// Why reading stopped early, if it did.
    pub(crate) fn stopped(&self) -> Option<Stop> {
        self.stop.get()
    }

    /// True (and the stop recorded) once the time limit has passed.
    pub(crate) fn out_of_time(&self) -> bool {
        if self.deadline.is_some_and(|(d, _)| Instant::now() >= d) {
            self.stop.set(Some(Stop::Time));
        }
        self.stop.get() == Some(Stop::Time)
    }

    /// `r`, counted against the budget and the time limit: it ends (reads
    /// 0) once either is reached, and [`Ctx::stopped`] says which.
    pub(crate) fn limited<R: Read>(&self, r: R) -> Limited<'_, R> {
        Limited {
            inner: r,
            ctx: self,
            count: true,
        }
    }

    /// `r` under the time limit only (a file on disk inflates nothing).
    pub(crate) fn timed<R: Read>(&self, r: R) -> Limited<'_, R> {
        Limited {
            inner: r,
            ctx: self,
            count: false,
        }
    }

    /// Records findings of a streamed part named `name`.
    pub(crate) fn found(&self, name: Option<String>, found: Vec<TextFinding>) {
        self.found
            .borrow_mut()
            .extend(found.into_iter().map(|f| (name.clone(), f)));
    }

    /// How many streamed findings there are so far.
    pub(crate) fn found_count(&self) -> usize {
        self.found.borrow().len() + self.ocr_found.borrow().len()
    }

    /// Where the streamed and the OCR findings stand, for [`Ctx::prefix_found`].
    pub(crate) fn found_mark(&self) -> (usize, usize) {
        (self.found.borrow().len(), self.ocr_found.borrow().len())
    }

    /// Streamed and OCR findings since `from` (a [`Ctx::found_mark`]),
    /// made inside a nested file, are named from the file that holds it
    /// (as [`member_as`] names parts).
    pub(crate) fn prefix_found(&self, from: (usize, usize), prefix: &str) {
        let named = |n: &mut Option<String>| {
            *n = Some(match n.take() {
                Some(n) => format!("{prefix}!{n}"),
                None => prefix.to_owned(),
            });
        };
        for (n, _) in self.found.borrow_mut().iter_mut().skip(from.0) {
            named(n);
        }
        for (n, _) in self.ocr_found.borrow_mut().iter_mut().skip(from.1) {
            named(n);
        }
    }

    /// The gaps and streamed findings, once extraction is over.
    #[cfg(test)]
    pub(crate) fn into_results(self) -> (Vec<String>, Vec<(Option<String>, TextFinding)>) {
        (self.gaps.into_inner(), self.found.into_inner())
    }

    /// The gaps, streamed findings and OCR findings, once extraction is
    /// over.
    pub(super) fn into_extracted(self, parts: Vec<Part>) -> Extracted {
        let ocr = self.ocr_found.into_inner();
        let (gaps, found) = (self.gaps.into_inner(), self.found.into_inner());
        Extracted {
            parts,
            gaps,
            found,
            ocr,
        }
    }

    /// Records what could not be read.
    pub(crate) fn gap(&self, what: String) {
        self.gaps.borrow_mut().push(what);
    }

    /// How many gaps are recorded so far (for [`Ctx::prefix_gaps`]).
    pub(crate) fn gap_count(&self) -> usize {
        self.gaps.borrow().len()
    }

    /// Gaps recorded since `from` while reading a nested file are named
    /// from inside it; this names them from the file that holds it.
    pub(crate) fn prefix_gaps(&self, from: usize, prefix: &str) {
        for g in self.gaps.borrow_mut().iter_mut().skip(from) {
            *g = format!("{prefix}!{g}");
        }
    }

    /// Sets the bytes that may still be inflated (a test's small budget).
    #[cfg(test)]
    pub(crate) fn set_budget(&self, n: u64) {
        self.budget.set(n);
    }

    /// Bytes that may still be inflated.
    pub(crate) fn budget(&self) -> u64 {
        self.budget.get()
    }

    /// Counts `n` bytes against the budget.
    pub(crate) fn spend(&self, n: u64) {
        self.budget.set(self.budget.get().saturating_sub(n));
    }

    /// Reads `r` to its end, up to the entry cap and what is left of the
    /// budget. Returns the bytes read (those before an error too) and how
    /// the read ended.
    pub(crate) fn read_capped(&self, r: impl Read) -> (Vec<u8>, End) {
        let mut out = Vec::new();
        // read_to_end keeps what it read before an error; the budget is
        // spent as it reads.
        let end = match self.limited(r).take(MAX_ENTRY + 1).read_to_end(&mut out) {
            Err(_) => End::Broken,
            Ok(_) if out.len() as u64 > MAX_ENTRY || self.stopped().is_some() => End::Capped,
            Ok(_) => End::Whole,
        };
        out.truncate(usize::try_from(MAX_ENTRY).unwrap_or(usize::MAX));
        (out, end)
    }

    /// Why reading stopped at the budget or the time limit, for a gap.
    pub(crate) fn stop_reason(&self) -> String {
        match (self.stopped(), self.deadline) {
            (Some(Stop::Time), Some((_, t))) => format!(
                "reading took longer than {}s (the per-file limit): the rest was not read",
                t.as_secs_f64()
            ),
            _ => format!(
                "more than {} MiB inflated from the file in all: the rest was not read",
                MAX_INFLATED >> 20
            ),
        }
    }

    /// Why a capped read stopped short, for a gap.
    pub(crate) fn cap_reason(&self) -> String {
        if self.stopped().is_some() {
            return self.stop_reason();
        }
        match self.budget() < MAX_ENTRY {
            true => format!(
                "more than {} MiB inflated from the file in all: the rest was not read",
                MAX_INFLATED >> 20
            ),
            false => format!(
                "more than {} MiB inflated: only the first {} MiB was read",
                MAX_ENTRY >> 20,
                MAX_ENTRY >> 20
            ),
        }
    }
}

/// A reader that ends once the file's budget or time limit is reached
/// (see [`Ctx::limited`]).
pub(crate) struct Limited<'a, R> {
    inner: R,
    ctx: &'a Ctx,
    /// Spends the inflation budget.
    count: bool,
}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ctx.stopped().is_some() || self.ctx.out_of_time() {
            return Ok(0);
        }
        let mut want = buf.len();
        if self.count {
            if self.ctx.budget() == 0 {
                self.ctx.stop.set(Some(Stop::Budget));
                return Ok(0);
            }
            want = want.min(usize::try_from(self.ctx.budget()).unwrap_or(usize::MAX));
        }
        let n = self.inner.read(&mut buf[..want])?;
        if self.count {
            self.ctx.spend(n as u64);
        }
        Ok(n)
    }
}
