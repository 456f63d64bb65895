//! Progress bars (indicatif) for long commands, drawn only on a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A byte-count progress bar on stderr; hidden when stderr is not a terminal.
pub struct Bar(ProgressBar);

/// A byte-count bar on stderr (bytes, rate, ETA) whose text starts with
/// `prefix` then the message; hidden when stderr is not a terminal.
pub fn byte_bar(prefix: &str) -> ProgressBar {
    let pb = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    let template =
        format!("{prefix}{{msg}} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}}");
    pb.set_style(
        ProgressStyle::with_template(&template)
            .expect("static template")
            .progress_chars("=> "),
    );
    pb
}

impl Bar {
    /// A bar labelled `what` (e.g. "importing").
    pub fn new(what: &str) -> Bar {
        let pb = byte_bar("");
        pb.set_message(what.to_string());
        Bar(pb)
    }

    /// Removes the bar from the screen.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl vault::Progress for Bar {
    fn set_total(&self, bytes: u64) {
        self.0.set_length(bytes);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}
