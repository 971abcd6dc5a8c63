//! The machine description, the gap analyses and writing the table into docs/performance.md.

use super::*;

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let version = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{} cores ({cpu}), {:.1} GiB RAM, Docker Engine {}, node {} on the host and in the image, release build, loopback",
        cores(),
        mem_kib as f64 / 1024.0 / 1024.0,
        version(&["docker", "version", "--format", "{{.Server.Version}}"]),
        version(&["node", "--version"]),
    )
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

pub(crate) const GO_SEQUENCE: &str = "earlier implementation's CLI sequence (create, cp in, start -a, cp out, rm -f)";
pub(crate) const ARCHIVE_PATH: &str =
    "cold over the archive endpoints (bollard: create, put archive, start, wait, get archive)";
pub(crate) const ATTACHED_PATH: &str =
    "cold over the attached stdin (bollard: create, attach, start, key + job in, result out)";

/// Where back-to-back `prewarm` invokes of `runtime` lose their time, and
/// what would close the gap to 30 ms, from this run's numbers.
pub(crate) fn prewarm_gap(
    runtime: &str,
    rows: &[Row],
    phase_rows: &[PhaseRow],
    starts: &[(&str, Vec<(usize, f64)>)],
) -> String {
    let row = |label: String| rows.iter().find(|r| r.label == label);
    let phase = |label: String| phase_rows.iter().find(|r| r.label == label).map(|r| &r.phases);
    let base = format!("{runtime} runtime, `prewarm`");
    let (Some(b2b), Some(p)) = (
        row(format!("{base}, back to back")),
        phase(format!("{base}, back to back, 1 client")),
    ) else {
        return String::new();
    };
    let refilled = phase(format!("{base}, pool refilled between invokes, 1 client"));
    let p50 = b2b.c1.latency.pct(0.5);
    let mut text = format!(
        "**`prewarm` back to back, {runtime} runtime: p50 {} against 30 ms.** Of {} runs at one client, {} found the pool empty and started their own runner (own start p50 {}: create {}, attach {}, start {}, node ready {}). Runs the pool served spent {} taking the runner, {} to the verdict of their job and {} cleaning up",
        fmt_ms(p50),
        p.runs,
        p.cold,
        fmt_ms(p.launch),
        fmt_ms(p.create),
        fmt_ms(p.attach),
        fmt_ms(p.start),
        fmt_ms(p.ready),
        fmt_ms(p.take),
        fmt_ms(p.serve),
        fmt_ms(p.end_job),
    );
    if let Some(r) = refilled {
        text.push_str(&format!(
            ", against {} to the verdict with the pool refilled between invokes",
            fmt_ms(r.serve)
        ));
    }
    let refill_rate = if p.pool_launch > 0.0 {
        2000.0 / p.pool_launch
    } else {
        f64::NAN
    };
    text.push_str(&format!(
        ". While runs ended, {:.1} pool runners were being started on average; a pool start took {} (launch to ready), so two at a time refill at most {} runners/s, while one client invoked {} times a second back to back.",
        p.launching,
        fmt_ms(p.pool_launch),
        fmt_rate(refill_rate),
        fmt_rate(b2b.c1.rate),
    ));
    if let Some((_, levels)) = starts.iter().find(|(r, _)| *r == runtime) {
        let at = |k: usize| levels.iter().find(|(p, _)| *p == k).map_or(f64::NAN, |(_, r)| *r);
        let (one, two, four) = (at(1), at(2), at(4));
        text.push_str(&format!(
            " This machine completes {} / {} / {} cold runs a second with 1 / 2 / 4 at a time: ",
            fmt_rate(one),
            fmt_rate(two),
            fmt_rate(four)
        ));
        if four > two * 1.2 {
            text.push_str(&format!(
                "starting more at once does raise the rate ({:.0} % from 2 to 4), so a refill parallelism above the fixed 2 (`MAX_PARALLEL_LAUNCHES` in faas-adapters/src/runner/pool.rs, a setting to add) would shorten the drain.",
                (four / two - 1.0) * 100.0
            ));
        } else {
            text.push_str("starting more at once does not raise the rate, so the refill parallelism (2) is not the limit: the host's start rate is.");
        }
    }
    text.push_str("\n\n*What would close it:* ");
    if p.cold > 0 && b2b.c1.rate > refill_rate {
        text.push_str("back to back, one client asks for runners faster than the pool refills, so the pool drains and the later invokes start cold; the p50 follows the share of cold starts. A bigger pool only delays the drain; closing it needs runner starts as fast as the invokes (the machine's start rate above is the ceiling), or `warm` for repeated invokes of one function. ");
    }
    if let Some(r) = refilled {
        if p.serve > 1.5 * r.serve {
            text.push_str(&format!(
                "Runs served by a started runner wait {} for their verdict instead of {} when the pool was refilled first: the refills running beside them take the CPU ({} cores), not the pool's bookkeeping (take {}). Deferring refills while runs are in flight, or fewer concurrent launches, would trade pool depth for that time.",
                fmt_ms(p.serve),
                fmt_ms(r.serve),
                cores(),
                fmt_ms(p.take)
            ));
        }
    }
    text
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
pub(crate) fn chrono_like_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub(crate) fn write_into_docs(table: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/performance.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
    let block = format!("{start}\n{table}{end}");
    let updated = match (text.find(start), text.find(end)) {
        (Some(a), Some(b)) if a < b => format!("{}{}{}", &text[..a], block, &text[b + end.len()..]),
        _ => format!("{text}\n{block}\n"),
    };
    std::fs::write(&path, updated).unwrap();
    println!("wrote {}", path.display());
}
