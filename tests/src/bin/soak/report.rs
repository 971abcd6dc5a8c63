//! The report: a Markdown table of what the run saw, printed and written
//! into `docs/reliability.md` between the `soak:start` / `soak:end` markers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::checks::Versions;
use crate::traffic::{Oddity, Tally};

/// Everything the report shows.
pub(crate) struct Findings<'a> {
    pub(crate) clients: usize,
    pub(crate) savers: usize,
    pub(crate) runtime: &'a str,
    pub(crate) fault_every: Duration,
    /// The PostgreSQL fault was skipped (`SOAK_PG_STOP` / `SOAK_PG_START` unset).
    pub(crate) skipped_pg: bool,
    pub(crate) elapsed: Duration,
    pub(crate) requests: u64,
    pub(crate) faults_injected: usize,
    pub(crate) tally: &'a Tally,
    pub(crate) versions: &'a Versions,
    pub(crate) containers: &'a [String],
    pub(crate) processes: &'a [u32],
    pub(crate) dispatcher_clean: bool,
    pub(crate) worker_clean: bool,
    pub(crate) unexplained: &'a [&'a Oddity],
    pub(crate) fault_notes: &'a [String],
    pub(crate) by_fault: &'a BTreeMap<&'static str, u64>,
    /// `(t in s, dispatcher RSS KiB, worker RSS KiB)` samples.
    pub(crate) rss: &'a [(u64, u64, u64)],
}

impl Findings<'_> {
    /// 5xx answers and transport errors no fault explains.
    pub(crate) fn unexplained_5xx(&self) -> usize {
        self.unexplained.iter().filter(|o| o.server_error).count()
    }

    /// A version lost or duplicated, a container or process leaked, or an
    /// unexpected answer no fault explains.
    pub(crate) fn failed(&self) -> bool {
        !self.versions.lost.is_empty()
            || !self.versions.duplicated.is_empty()
            || !self.containers.is_empty()
            || !self.processes.is_empty()
            || self.unexplained_5xx() > 0
            || !self.unexplained.is_empty()
    }
}

/// The report in Markdown.
pub(crate) fn render(f: &Findings<'_>) -> String {
    let mut report = String::new();
    let requests = f.requests;
    let _ = writeln!(
        report,
        "Run of `scripts/soak.sh` on {} ({} s, {} clients + {} savers, runtime `{}`, storage `db_s3`, dispatcher → worker; a fault every {} s{}).\n",
        std::env::var("SOAK_MACHINE").unwrap_or_else(|_| "this project's machine (2 cores)".into()),
        f.elapsed.as_secs(),
        f.clients,
        f.savers,
        f.runtime,
        f.fault_every.as_secs(),
        if f.skipped_pg { "; PostgreSQL fault skipped: SOAK_PG_STOP/START not set" } else { "" }
    );
    let _ = writeln!(report, "| Result | Value |\n|---|---|");
    let _ = writeln!(
        report,
        "| requests | {requests} ({:.1}/s) |",
        requests as f64 / f.elapsed.as_secs_f64()
    );
    let _ = writeln!(report, "| faults injected | {} |", f.faults_injected);
    let _ = writeln!(
        report,
        "| acknowledged saves | {} |",
        f.tally.acked.values().map(Vec::len).sum::<usize>()
    );
    let _ = writeln!(
        report,
        "| saves without an answer (fault windows) | {} |",
        f.tally.saves_uncertain
    );
    let _ = writeln!(
        report,
        "| versions listed / of them never acknowledged | {} / {} |",
        f.versions.listed, f.versions.unacked
    );
    let _ = writeln!(report, "| **lost versions** | **{}** |", f.versions.lost.len());
    let _ = writeln!(
        report,
        "| **duplicated versions** | **{}** |",
        f.versions.duplicated.len()
    );
    let _ = writeln!(report, "| **leaked containers** | **{}** |", f.containers.len());
    let _ = writeln!(report, "| **leaked processes** | **{}** |", f.processes.len());
    let _ = writeln!(
        report,
        "| graceful exit at the end (dispatcher, worker) | {}, {} |",
        f.dispatcher_clean, f.worker_clean
    );
    let _ = writeln!(
        report,
        "| unexpected answers explained by a fault | {} |",
        f.tally.oddities.len() - f.unexplained.len()
    );
    let _ = writeln!(
        report,
        "| **5xx / transport errors not explained by a fault** | **{}** |",
        f.unexplained_5xx()
    );
    let _ = writeln!(
        report,
        "| other unexpected answers not explained by a fault | {} |",
        f.unexplained.len() - f.unexplained_5xx()
    );
    let _ = writeln!(
        report,
        "\nRequests by outcome (`<kind>: <HTTP status> <run status> <code>`):\n"
    );
    let _ = writeln!(report, "| Outcome | Count |\n|---|---|");
    for (k, v) in &f.tally.outcomes {
        let _ = writeln!(report, "| `{k}` | {v} |");
    }
    let _ = writeln!(report, "\nFaults, in order:\n");
    for (i, n) in f.fault_notes.iter().enumerate() {
        let _ = writeln!(report, "{}. {n}", i + 1);
    }
    let _ = writeln!(report, "\nUnexpected answers per fault window: {:?}\n", f.by_fault);
    let _ = writeln!(
        report,
        "RSS over time (MiB):\n\n| t (s) | dispatcher | worker |\n|---|---|---|"
    );
    let step = (f.rss.len() / 12).max(1);
    for (i, (t, d, w)) in f.rss.iter().enumerate() {
        if i % step == 0 || i + 1 == f.rss.len() {
            let _ = writeln!(
                report,
                "| {t} | {:.1} | {:.1} |",
                *d as f64 / 1024.0,
                *w as f64 / 1024.0
            );
        }
    }
    for o in f.unexplained.iter().take(20) {
        let _ = writeln!(report, "\n- unexplained at {:.1} s: {}", o.at.as_secs_f64(), o.what);
    }
    for l in f.versions.lost.iter().chain(&f.versions.duplicated).take(20) {
        let _ = writeln!(report, "\n- {l}");
    }
    if !f.containers.is_empty() || !f.processes.is_empty() {
        let _ = writeln!(
            report,
            "\n- leaked: containers {:?}, processes {:?}",
            f.containers, f.processes
        );
    }
    report
}

/// Writes `report` into `docs/reliability.md` between its soak markers.
pub(crate) fn write_into_docs(report: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reliability.md");
    let doc = std::fs::read_to_string(&path).expect("docs/reliability.md");
    let (start, end) = ("<!-- soak:start -->", "<!-- soak:end -->");
    let (Some(a), Some(b)) = (doc.find(start), doc.find(end)) else {
        panic!("docs/reliability.md lacks the soak markers")
    };
    let updated = format!("{}{start}\n{report}{}", &doc[..a], &doc[b..]);
    std::fs::write(&path, updated).unwrap();
    println!("wrote {}", path.display());
}
