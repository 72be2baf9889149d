//! Medians, ratios and the results table (Markdown, so it pastes into
//! BENCHMARKS.md as it is).

use std::fmt::Write as _;
use std::sync::Mutex;

/// The median of `samples` (the mean of the middle two for an even count);
/// `None` when there are none.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// The samples of one client in one scenario.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Who.
    pub label: String,
    /// One value per run.
    pub samples: Vec<f64>,
    /// Why it could not run, if it could not.
    pub failed: Option<String>,
}

impl Series {
    /// An empty series for `label`.
    pub fn new(label: impl Into<String>) -> Series {
        Series {
            label: label.into(),
            ..Series::default()
        }
    }

    /// The median, unless the series failed or is empty.
    pub fn median(&self) -> Option<f64> {
        if self.failed.is_some() {
            None
        } else {
            median(&self.samples)
        }
    }

    /// `min-max` of the samples, to show the noise.
    pub fn spread(&self) -> String {
        let lo = self.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self
            .samples
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi.is_finite() {
            format!("{}–{}", fmt_num(lo), fmt_num(hi))
        } else {
            "-".into()
        }
    }
}

/// One row of the results table: mpnet against one peer.
#[derive(Debug, Clone)]
pub struct Row {
    /// The scenario.
    pub scenario: String,
    /// The unit, e.g. `req/s`.
    pub unit: String,
    /// mpnet's series.
    pub mpnet: Series,
    /// The peer's series (`None` for rows with no peer).
    pub peer: Option<Series>,
    /// Whether a larger figure is better (rates) or worse (RSS, allocations).
    pub higher_is_better: bool,
    /// The target, as text.
    pub target: String,
}

impl Row {
    /// `mpnet / peer` of the medians.
    pub fn ratio(&self) -> Option<f64> {
        let m = self.mpnet.median()?;
        let p = self.peer.as_ref()?.median()?;
        (p != 0.0).then_some(m / p)
    }
}

/// Notes printed under the table (skipped peers, pending scenarios).
#[derive(Debug, Default)]
pub struct Report {
    rows: Mutex<Vec<Row>>,
    notes: Mutex<Vec<String>>,
}

impl Report {
    /// Adds a row and prints it at once.
    pub fn row(&self, row: Row) {
        println!("{}", format_row(&row));
        self.rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(row);
    }

    /// Adds a note and prints it at once.
    pub fn note(&self, note: impl Into<String>) {
        let note = note.into();
        println!("  note: {note}");
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(note);
    }

    /// The whole table and the notes, as Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(HEADER);
        for row in self.rows.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push_str(&format_row(row));
            out.push('\n');
        }
        let notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if !notes.is_empty() {
            out.push('\n');
            for n in notes.iter() {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }
}

/// The table's header.
pub const HEADER: &str = "| scenario | unit | mpnet | median | (min–max) | peer | median | (min–max) | mpnet/peer | target |\n\
|---|---|---|---:|---|---|---:|---|---:|---|\n";

/// A number with a sensible number of digits.
pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn cell(s: &Series) -> (String, String) {
    match (&s.failed, s.median()) {
        (Some(why), _) => (why.clone(), "-".into()),
        (None, Some(m)) => (fmt_num(m), s.spread()),
        (None, None) => ("-".into(), "-".into()),
    }
}

fn format_row(row: &Row) -> String {
    let (m, ms) = cell(&row.mpnet);
    let (plabel, p, ps) = match &row.peer {
        Some(peer) => {
            let (p, ps) = cell(peer);
            (peer.label.clone(), p, ps)
        }
        None => ("-".into(), "-".into(), "-".into()),
    };
    let ratio = row.ratio().map_or("-".into(), |r| {
        let better = if row.higher_is_better {
            ""
        } else {
            " (lower is better)"
        };
        format!("{r:.2}x{better}")
    });
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        row.scenario, row.unit, row.mpnet.label, m, ms, plabel, p, ps, ratio, row.target
    )
}
