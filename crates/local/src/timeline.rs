//! The control plane's record: one row per datapoint and per batch of task events, as JSON
//! lines (`--timeline FILE`) and as the design document's table on stderr:
//!
//! ```text
//! Time    | Queue | Desired | Running | Action
//! --------|-------|---------|---------|------------------
//! 0:00:00 |  25   |    0    |    0    | Start: 25 messages queued
//! ```
//!
//! `t` is simulated seconds; `Queue` is the visible count (in flight is in the JSON).

use serde::{Deserialize, Serialize};
use std::io::Write;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Simulated seconds since the start.
    pub t: f64,
    pub queue_visible: u64,
    pub queue_inflight: u64,
    pub desired: u32,
    pub running: u32,
    pub action: String,
}

/// `h:mm:ss` for simulated seconds: the design document's tables count `h:mm`, and a local
/// run needs the seconds too.
pub fn clock_text(t: f64) -> String {
    let s = t.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub const TABLE_HEADER: &str = "Time    | Queue | Desired | Running | Action\n--------|-------|---------|---------|------------------";

/// One table line, columns as wide as the design document's.
pub fn table_line(row: &Row) -> String {
    format!(
        "{:<8}|{:^7}|{:^9}|{:^9}| {}",
        clock_text(row.t),
        row.queue_visible,
        row.desired,
        row.running,
        row.action
    )
}

/// Where rows go. Rows are also kept in memory for the run's summary.
pub struct Timeline {
    json: Option<Box<dyn Write + Send>>,
    table: Option<Box<dyn Write + Send>>,
    header_done: bool,
    rows: Vec<Row>,
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline")
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl Timeline {
    /// `json`: JSON lines sink; `table`: the live table's sink (stderr in the CLI).
    pub fn new(json: Option<Box<dyn Write + Send>>, table: Option<Box<dyn Write + Send>>) -> Self {
        Timeline {
            json,
            table,
            header_done: false,
            rows: Vec::new(),
        }
    }

    /// Keeps rows in memory only.
    pub fn in_memory() -> Self {
        Self::new(None, None)
    }

    pub fn record(&mut self, mut row: Row) -> std::io::Result<()> {
        row.t = (row.t * 10.0).round() / 10.0;
        if let Some(w) = self.json.as_mut() {
            let line = serde_json::to_string(&row).map_err(std::io::Error::other)?;
            writeln!(w, "{line}")?;
            w.flush()?;
        }
        if let Some(w) = self.table.as_mut() {
            if !self.header_done {
                writeln!(w, "{TABLE_HEADER}")?;
                self.header_done = true;
            }
            writeln!(w, "{}", table_line(&row))?;
            w.flush()?;
        }
        self.rows.push(row);
        Ok(())
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn into_rows(self) -> Vec<Row> {
        self.rows
    }
}

/// The desired counts a timeline went through, starting with the first row's and keeping
/// only changes: `[0, 5, 0]` for a burst of 25 at the defaults.
pub fn desired_sequence(rows: &[Row]) -> Vec<u32> {
    let mut seq: Vec<u32> = Vec::new();
    for r in rows {
        if seq.last() != Some(&r.desired) {
            seq.push(r.desired);
        }
    }
    seq
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: f64, q: u64, d: u32, r: u32, action: &str) -> Row {
        Row {
            t,
            queue_visible: q,
            queue_inflight: 0,
            desired: d,
            running: r,
            action: action.into(),
        }
    }

    #[test]
    fn table_matches_the_design_document_layout() {
        assert_eq!(
            table_line(&row(0.0, 25, 0, 0, "25 events arrive")),
            "0:00:00 |  25   |    0    |    0    | 25 events arrive"
        );
        assert_eq!(
            table_line(&row(60.0, 25, 5, 0, "Scale to 5 tasks")),
            "0:01:00 |  25   |    5    |    0    | Scale to 5 tasks"
        );
        assert_eq!(clock_text(3725.4), "1:02:05");
    }

    #[test]
    fn json_lines_have_the_documented_fields() {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut t = Timeline::new(Some(Box::new(Sink(buf.clone()))), None);
        t.record(row(61.234, 3, 1, 1, "Task started")).unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "{\"t\":61.2,\"queue_visible\":3,\"queue_inflight\":0,\"desired\":1,\"running\":1,\"action\":\"Task started\"}\n"
        );
    }

    #[test]
    fn desired_sequence_keeps_changes_only() {
        let rows = [
            row(0.0, 25, 0, 0, ""),
            row(60.0, 25, 5, 0, ""),
            row(61.0, 20, 5, 5, ""),
            row(400.0, 0, 0, 0, ""),
        ];
        assert_eq!(desired_sequence(&rows), vec![0, 5, 0]);
    }
}
