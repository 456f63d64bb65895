//! Reading order from positions, as `pdftotext` does: the runs of text a
//! page shows are grouped into lines by baseline, lines read top to
//! bottom and runs left to right, whatever order the content stream drew
//! them in. A wide gap between runs on a line separates cells (a tab), so
//! that a printed sheet reads as rows: LibreOffice draws each cell on its
//! own, and a number drawn right-aligned far from its heading is, by
//! position, still under it.
//!
//! A block of such rows under a row of two or more cells is a table
//! ([`blocks`]): its cells are put in the columns of that first row (by
//! where they start), so that the scanner reads it as a sheet, with the
//! first row as headings.

/// Text shown by one operator, where it lands on the page (user space,
/// y up); `end` is estimated from the number of characters.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub(crate) x: f32,
    pub(crate) y: f32,
    pub(crate) end: f32,
    /// Font size on the page (text space scaled by the matrices).
    pub(crate) size: f32,
    pub(crate) text: String,
}

/// A gap wider than this many ems between runs of a line separates cells.
/// Word spaces are about a quarter em; the estimated run ends are off by
/// a little more than that over a long run.
const CELL_GAP: f32 = 1.5;
/// A gap wider than this many ems between runs (but not a cell gap) is a
/// word space.
const WORD_GAP: f32 = 0.2;
/// Runs whose baselines differ by less than this many ems are one line
/// (a superscript, a baseline nudged by a fraction of a point).
const SAME_LINE: f32 = 0.5;
/// Rows of a table are at most this many ems apart: an empty row or more
/// ends the table.
const ROW_GAP: f32 = 2.0;

/// One cell of a line: runs close enough to be read together.
struct Cell {
    x: f32,
    end: f32,
    text: String,
}

struct Line {
    y: f32,
    size: f32,
    cells: Vec<Cell>,
    /// The line's runs, left to right: a table's columns are filled run by
    /// run, since a number right-aligned in its cell can end as close to
    /// the next cell's text as a word space.
    runs: Vec<Cell>,
}

/// The size of one em for gaps: a run whose size is unknown (zero) still
/// needs a scale.
fn em(size: f32) -> f32 {
    size.max(1.0)
}

/// `runs` grouped into lines, top to bottom, each line's runs left to
/// right, joined into cells.
fn lines(runs: &[Run]) -> Vec<Line> {
    let mut order: Vec<&Run> = runs.iter().collect();
    // Stable: runs on one baseline keep the stream's order until sorted
    // by x below.
    order.sort_by(|a, b| b.y.total_cmp(&a.y));
    let mut grouped: Vec<Vec<&Run>> = Vec::new();
    let mut line_y = f32::NAN;
    let mut line_size = 0.0f32;
    for r in order {
        let tolerance = SAME_LINE * em(line_size.max(r.size));
        match grouped.last_mut() {
            Some(line) if (line_y - r.y).abs() <= tolerance => {
                line_size = line_size.max(r.size);
                line.push(r);
            }
            _ => {
                (line_y, line_size) = (r.y, r.size);
                grouped.push(vec![r]);
            }
        }
    }
    grouped
        .into_iter()
        .map(|mut line| {
            line.sort_by(|a, b| a.x.total_cmp(&b.x));
            let size = line.iter().map(|r| r.size).fold(0.0, f32::max);
            let mut cells: Vec<Cell> = Vec::new();
            for r in &line {
                let gap = cells.last().map(|c| r.x - c.end);
                match (cells.last_mut(), gap) {
                    (Some(c), Some(gap)) if gap <= CELL_GAP * em(size) => {
                        if gap > WORD_GAP * em(size)
                            && !c.text.ends_with(' ')
                            && !r.text.starts_with(' ')
                        {
                            c.text.push(' ');
                        }
                        c.text.push_str(&r.text);
                        c.end = c.end.max(r.end);
                    }
                    _ => cells.push(Cell {
                        x: r.x,
                        end: r.end,
                        text: r.text.clone(),
                    }),
                }
            }
            cells.retain(|c| !c.text.trim().is_empty());
            let runs = line
                .iter()
                .filter(|r| !r.text.trim().is_empty())
                .map(|r| Cell {
                    x: r.x,
                    end: r.end,
                    text: r.text.clone(),
                })
                .collect();
            Line {
                y: line[0].y,
                size,
                cells,
                runs,
            }
        })
        .filter(|l| !l.cells.is_empty())
        .collect()
}

/// A line's cells, tab-separated.
fn push_line(out: &mut String, line: &Line) {
    for (i, c) in line.cells.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        out.push_str(c.text.trim());
    }
    out.push('\n');
}

/// The text of `runs` in reading order: one line a baseline, cells
/// tab-separated.
pub(crate) fn plain(runs: &[Run]) -> String {
    let mut out = String::new();
    for line in lines(runs) {
        push_line(&mut out, &line);
    }
    join_wrapped(out)
}

/// Group lengths a number written in groups can have: a card
/// (`4393 0311 3444 4290`) and an SSN (`738 74 7063`).
const GROUPINGS: &[&[usize]] = &[&[4, 4, 4, 4], &[3, 2, 4]];

/// Digit-group lengths of `tokens` while they are all digits (trailing
/// punctuation allowed on the last one read: a sentence may end there).
fn groups<'a>(tokens: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let mut out = Vec::new();
    for t in tokens {
        let digits = t.trim_end_matches(['.', ',', ';', ':', ')']);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        out.push(digits.len());
        if digits.len() != t.len() {
            break;
        }
    }
    out
}

/// `text` with a line break inside a grouped number undone: a paragraph
/// (or a text box) wraps `card 4393` / `0311 3444 4290` at a group, and
/// neither half is a number the scanner knows. Joined only when the
/// groups at the end of one line and those at the start of the next make
/// exactly one of [`GROUPINGS`], so that a column of years or a tracking
/// number split in two is left alone.
fn join_wrapped(text: String) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_end_matches('\n');
        let joins = lines.get(i + 1).is_some_and(|next| {
            let last_cell = body.rsplit('\t').next().unwrap_or("");
            let first_cell = next.split(['\t', '\n']).next().unwrap_or("");
            let mut tail = groups(last_cell.split(' ').rev());
            tail.reverse();
            // The tail's last group must end the line: no punctuation.
            let head = groups(first_cell.split(' '));
            !tail.is_empty()
                && !head.is_empty()
                && !last_cell.ends_with(|c: char| !c.is_ascii_digit())
                && GROUPINGS
                    .iter()
                    .any(|g| **g == [&tail[..], &head[..]].concat()[..])
        });
        out.push_str(body);
        out.push(if joins { ' ' } else { '\n' });
    }
    out
}

/// A stretch of a page's text: prose, or a table whose first line holds
/// its headings.
#[derive(Debug, PartialEq)]
pub(crate) struct Block {
    pub(crate) text: String,
    pub(crate) table: bool,
}

/// The text of `runs` in reading order, its tables apart: a line of two or
/// more short cells (headings) and the lines close under it that start no
/// further left and keep to its columns, when at least one of those fills
/// two of them.
pub(crate) fn blocks(runs: &[Run]) -> Vec<Block> {
    let lines = lines(runs);
    let mut out: Vec<Block> = Vec::new();
    let mut prose: Vec<&Line> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let head = &lines[i];
        let mut end = i + 1;
        let anchors: Vec<f32> = head.cells.iter().map(|c| c.x).collect();
        let headings = head.cells.len() >= 2
            && head
                .cells
                .iter()
                .all(|c| c.text.split_whitespace().count() <= MAX_HEADING_WORDS);
        let filled = |l: &Line| {
            columns(l, &anchors)
                .iter()
                .filter(|c| !c.is_empty())
                .count()
        };
        // A row filling two columns makes the lines a table.
        let mut table_found = false;
        if headings {
            let left = head.cells[0].x - em(head.size);
            while let Some(next) = lines.get(end) {
                let prev = &lines[end - 1];
                if prev.y - next.y > ROW_GAP * em(prev.size.max(next.size))
                    || next.cells[0].x < left
                    || crosses(next, &anchors)
                    // Bounded: every line could start a candidate, and
                    // looking far for each would be quadratic.
                    || (!table_found && end - i > MAX_LOOKAHEAD)
                {
                    break;
                }
                table_found |= filled(next) >= 2;
                end += 1;
            }
        }
        let rows = &lines[i..end];
        if table_found {
            if !prose.is_empty() {
                out.push(Block {
                    text: join_wrapped(prose_text(&std::mem::take(&mut prose))),
                    table: false,
                });
            }
            out.push(Block {
                text: table(rows),
                table: true,
            });
            i = end;
        } else {
            prose.push(head);
            i += 1;
        }
    }
    if !prose.is_empty() || out.is_empty() {
        out.push(Block {
            text: join_wrapped(prose_text(&prose)),
            table: false,
        });
    }
    out
}

/// Most words in a cell of a row read as headings: a heading is a few
/// words; two columns of prose side by side are no table.
const MAX_HEADING_WORDS: usize = 4;
/// Most lines under a row of headings looked at for one that fills two of
/// its columns.
const MAX_LOOKAHEAD: usize = 64;
/// Fewest lines side by side with one gutter that are read as columns.
const MIN_COLUMN_LINES: usize = 3;

/// Prose `lines`, with text set in columns read column by column: where
/// at least [`MIN_COLUMN_LINES`] lines in a row have a cell starting at
/// the same x (a gutter) and none running across it, the text left of it
/// is read before the text right of it, so that a keyword at the end of
/// a left-hand line is not read as labelling the number that starts the
/// right-hand one.
fn prose_text(lines: &[&Line]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let gutter = lines[i].cells.get(1).map(|c| c.x);
        let mut end = i;
        if let Some(g) = gutter {
            while lines.get(end).is_some_and(|l| splits_at(l, g)) {
                end += 1;
            }
        }
        match gutter {
            Some(g) if end - i >= MIN_COLUMN_LINES => {
                let slack = em(lines[i].size);
                for right in [false, true] {
                    for l in &lines[i..end] {
                        let cells: Vec<&str> = l
                            .cells
                            .iter()
                            .filter(|c| (c.x >= g - slack) == right)
                            .map(|c| c.text.trim())
                            .collect();
                        if !cells.is_empty() {
                            out.push_str(&cells.join("\t"));
                            out.push('\n');
                        }
                    }
                }
                i = end;
            }
            _ => {
                push_line(&mut out, lines[i]);
                i += 1;
            }
        }
    }
    out
}

/// Whether `line` has a cell starting at `gutter` and none across it.
fn splits_at(line: &Line, gutter: f32) -> bool {
    let slack = em(line.size);
    line.cells.iter().any(|c| (c.x - gutter).abs() <= slack)
        && !line
            .cells
            .iter()
            .any(|c| c.x < gutter - slack && c.end > gutter + slack)
}

/// Whether a run of `line` runs on well past the start of the next column:
/// a line of prose under a line that happens to have a gap, not a row.
fn crosses(line: &Line, anchors: &[f32]) -> bool {
    let slack = SAME_LINE * em(line.size);
    line.runs.iter().any(|r| {
        let col = anchors.iter().rposition(|&a| a <= r.x + slack);
        col.and_then(|c| anchors.get(c + 1))
            .is_some_and(|&next| r.end > next + CELL_GAP * em(line.size))
    })
}

/// `rows` as tab-separated rows, each cell in the column of the first
/// row's cell it starts under ([`columns`]).
fn table(rows: &[Line]) -> String {
    let anchors: Vec<f32> = rows[0].cells.iter().map(|c| c.x).collect();
    let mut out = String::new();
    for row in rows {
        let cols = columns(row, &anchors);
        let used = cols
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        out.push_str(&cols[..used].join("\t"));
        out.push('\n');
    }
    out
}

/// The text of `row` in the columns starting at `anchors`: each run in the
/// last column starting at or left of it (a number is right-aligned in
/// its cell, its heading left-aligned).
fn columns(row: &Line, anchors: &[f32]) -> Vec<String> {
    let mut cols: Vec<String> = vec![String::new(); anchors.len()];
    let mut ends = vec![f32::NEG_INFINITY; anchors.len()];
    let slack = SAME_LINE * em(row.size);
    for c in &row.runs {
        let col = anchors.iter().rposition(|&a| a <= c.x + slack).unwrap_or(0);
        if !cols[col].is_empty() && c.x - ends[col] > WORD_GAP * em(row.size) {
            cols[col].push(' ');
        }
        // A tab inside a cell's text would move the cells after it.
        cols[col].push_str(&c.text.replace(['\t', '\n'], " "));
        ends[col] = ends[col].max(c.end);
    }
    for c in &mut cols {
        *c = c.trim().to_owned();
    }
    cols
}
#[cfg(test)]
mod tests {
    use super::*;

    fn run(x: f32, y: f32, text: &str) -> Run {
        Run {
            x,
            y,
            end: x + text.chars().count() as f32 * 5.0,
            size: 10.0,
            text: text.to_owned(),
        }
    }

    #[test]
    fn lines_read_top_to_bottom_and_left_to_right() {
        let runs = [
            run(73.0, 700.0, "second"),
            run(50.0, 712.0, "first"),
            run(50.0, 700.0, "line"),
            run(78.0, 712.2, "line"),
        ];
        assert_eq!(plain(&runs), "first line\nline second\n");
    }

    #[test]
    fn a_wide_gap_is_a_cell_gap() {
        let runs = [run(50.0, 700.0, "Name"), run(300.0, 700.0, "SSN")];
        assert_eq!(plain(&runs), "Name\tSSN\n");
    }

    /// A number right-aligned in its cell ends about a space before the
    /// next cell's text: still two columns.
    #[test]
    fn a_right_aligned_number_keeps_to_its_column() {
        let runs = [
            run(50.0, 700.0, "Bank Account"),
            run(185.0, 700.0, "Note"),
            run(135.0, 687.0, "371847115"),
            run(185.0, 687.0, "Your order 591229397 has shipped."),
            run(135.0, 674.0, "887718222"),
            run(185.0, 674.0, "Reading list"),
        ];
        let got = blocks(&runs);
        assert_eq!(
            got[0].text,
            "Bank Account\tNote\n371847115\tYour order 591229397 has shipped.\n\
             887718222\tReading list\n"
        );
    }

    /// A printed sheet drawn column by column (as some producers do): by
    /// position it is rows again, its right-aligned numbers under their
    /// heading, an empty cell kept as an empty column.
    #[test]
    fn a_column_major_table_reads_as_rows_under_its_headings() {
        let runs = [
            run(50.0, 700.0, "Name"),
            run(50.0, 687.0, "Wei Kowalski"),
            run(50.0, 674.0, "Olivia Chen"),
            run(50.0, 661.0, "Kenji Silva"),
            run(220.0, 700.0, "City"),
            run(220.0, 687.0, "Boston"),
            run(220.0, 661.0, "Lowell"),
            run(400.0, 700.0, "SSN"),
            run(455.0, 687.0, "222152950"),
            run(455.0, 674.0, "759246792"),
        ];
        let got = blocks(&runs);
        assert_eq!(
            got,
            [Block {
                text: "Name\tCity\tSSN\nWei Kowalski\tBoston\t222152950\n\
                       Olivia Chen\t\t759246792\nKenji Silva\tLowell\n"
                    .to_owned(),
                table: true,
            }]
        );
    }

    #[test]
    fn prose_around_a_table_stays_prose() {
        let runs = [
            run(50.0, 760.0, "Employee Noah Patel, SSN 294-65-4390."),
            run(50.0, 700.0, "Phone"),
            run(200.0, 700.0, "Driver License"),
            run(50.0, 687.0, "617-555-0100"),
            run(200.0, 687.0, "S78742908"),
            run(50.0, 600.0, "Regards,"),
        ];
        let got = blocks(&runs);
        let tables: Vec<bool> = got.iter().map(|b| b.table).collect();
        assert_eq!(tables, [false, true, false]);
        assert_eq!(
            got[1].text,
            "Phone\tDriver License\n617-555-0100\tS78742908\n"
        );
        assert_eq!(got[2].text, "Regards,\n");
    }

    #[test]
    fn a_grouped_number_wrapped_at_a_group_is_joined() {
        let t = |s: &str| join_wrapped(s.to_owned());
        assert_eq!(
            t("Card 4393\n0311 3444 4290.\nNext\n"),
            "Card 4393 0311 3444 4290.\nNext\n"
        );
        assert_eq!(
            t("number: 738\n74 7063 on file\n"),
            "number: 738 74 7063 on file\n"
        );
        // Not a grouping the scanner knows, or already whole: left alone.
        for kept in [
            "2019 2020\n2021\n",
            "tracking 9400 1000 0000\n7489 5713 40\n",
            "card 4393 0311 3444 4290\n1234\n",
            "ends 4393.\n0311 3444 4290\n",
        ] {
            assert_eq!(t(kept), kept);
        }
    }

    /// A paragraph under a line with a gap in it (a deletion mark, a
    /// footnote number) is prose: its lines run across the "columns".
    #[test]
    fn prose_running_across_the_columns_is_no_table() {
        let runs = [
            run(50.0, 700.0, "Removed here."),
            run(200.0, 700.0, "Card 4393"),
            run(50.0, 687.0, "0311 3444 4290 exp 04/27"),
            run(
                50.0,
                674.0,
                "The quarterly review covered staffing, training",
            ),
            run(
                50.0,
                661.0,
                "on the third floor, the committee will meet again",
            ),
            run(300.0, 661.0, "1"),
        ];
        let got = blocks(&runs);
        assert!(got.iter().all(|b| !b.table), "{got:?}");
        assert!(got[0]
            .text
            .starts_with("Removed here.\tCard 4393 0311 3444 4290 exp"));
    }

    /// Two columns of prose: read column by column, not as a table.
    #[test]
    fn prose_in_two_columns_is_read_column_by_column() {
        let runs = [
            run(50.0, 700.0, "The committee met on Tuesday and the"),
            run(300.0, 700.0, "123456789 units were shipped to the"),
            run(50.0, 687.0, "account holder asked for the SSN"),
            run(300.0, 687.0, "536221234 was logged in the order"),
            run(50.0, 674.0, "of the meeting, then went home."),
            run(300.0, 674.0, "book for later review by staff."),
        ];
        let got = blocks(&runs);
        assert_eq!(got.len(), 1);
        assert!(!got[0].table);
        assert_eq!(
            got[0].text,
            "The committee met on Tuesday and the\naccount holder asked for the SSN\n\
             of the meeting, then went home.\n123456789 units were shipped to the\n\
             536221234 was logged in the order\nbook for later review by staff.\n"
        );
    }

    /// Two lines of two cells each (a letterhead: name and date) with
    /// nothing under them are no table unless a second row has two cells.
    #[test]
    fn a_single_line_of_cells_is_no_table() {
        let runs = [
            run(50.0, 700.0, "Ana Silva"),
            run(300.0, 700.0, "3 December"),
            run(50.0, 687.0, "Dear Sir,"),
        ];
        assert!(blocks(&runs).iter().all(|b| !b.table));
    }
}
