//! The processes a runner started, found through `/proc` by their parent
//! links, and killed.
//!
//! A runner is started as a *child subreaper* (`PR_SET_CHILD_SUBREAPER`, see
//! `runner.rs`): a descendant whose parent dies (a double fork, the
//! intermediate of `setsid sh -c 'cmd &'`) is reparented to the runner, not
//! to PID 1, so every process the run started, `detached` or in another
//! session, stays below the runner and is found by walking parent links.
//!
//! Invariants:
//! - only descendants of a runner whose leader is not reaped yet are
//!   swept: its pid cannot have been reused, so neither can the tree below
//!   it;
//! - a sweep repeats until a pass finds no live descendant (a process may
//!   fork while it is swept: its orphans come to the runner and the next
//!   pass finds them), bounded in time ([`SWEEP_TIME_LIMIT`] for runners);
//! - it never signals the runner itself.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Bound on one sweep (passes repeat until none is left or this passes).
pub(super) const SWEEP_TIME_LIMIT: Duration = Duration::from_secs(5);
/// Processes read from `/proc` at most per pass (a bound on a huge table).
const MAX_PROCESSES: usize = 1 << 20;
/// Pause before a pass that only finds processes already killed (they are
/// still exiting).
const PASS_PAUSE: Duration = Duration::from_millis(2);

/// One process of the `/proc` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcEntry {
    pub(super) pid: i32,
    pub(super) ppid: i32,
    /// Exited, waiting to be reaped (`Z`) or being removed (`X`).
    pub(super) dead: bool,
}

/// Parses the `pid (comm) state ppid …` line of `/proc/<pid>/stat`. The
/// command name may hold spaces and parentheses: the state follows the last `)`.
pub(super) fn parse_stat(text: &str) -> Option<ProcEntry> {
    let (head, tail) = text.rsplit_once(')')?;
    let pid = head.split_once(" (")?.0.trim().parse().ok()?;
    let mut fields = tail.split_ascii_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcEntry {
        pid,
        ppid,
        dead: matches!(state, "Z" | "X" | "x"),
    })
}

/// Every process now in `/proc` (processes that end while it is read are
/// skipped).
fn snapshot() -> Vec<ProcEntry> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()))
        .take(MAX_PROCESSES)
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// The live (not yet exited) descendants of `root` in `table`, `root` excluded.
pub(super) fn live_descendants(root: i32, table: &[ProcEntry]) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<&ProcEntry>> = HashMap::new();
    for entry in table {
        children.entry(entry.ppid).or_default().push(entry);
    }
    let mut found = Vec::new();
    let mut seen = HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(parent) = stack.pop() {
        for child in children.get(&parent).into_iter().flatten() {
            if seen.insert(child.pid) {
                stack.push(child.pid);
                if !child.dead {
                    found.push(child.pid);
                }
            }
        }
    }
    found
}

/// How a sweep went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Swept {
    /// Processes sent SIGKILL.
    pub(super) killed: usize,
    /// Live descendants still found when the time limit passed.
    pub(super) left: usize,
}

/// SIGKILLs every descendant of `root` (not `root`), pass after pass until a
/// pass finds none or `limit` passes. Blocking (reads `/proc`).
pub(super) fn kill_descendants(root: Pid, limit: Duration) -> Swept {
    let started = Instant::now();
    let mut signalled = HashSet::new();
    loop {
        let live = live_descendants(root.as_raw(), &snapshot());
        if live.is_empty() {
            return Swept {
                killed: signalled.len(),
                left: 0,
            };
        }
        if started.elapsed() >= limit {
            tracing::warn!(
                runner = root.as_raw(),
                left = live.len(),
                "Processes of a run survived the sweep."
            );
            return Swept {
                killed: signalled.len(),
                left: live.len(),
            };
        }
        let mut fresh = false;
        for pid in live {
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => tracing::warn!(pid, error = %e, "Cannot kill a process of a run."),
            }
            fresh |= signalled.insert(pid);
        }
        if !fresh {
            // Everything found was killed already and is still exiting.
            std::thread::sleep(PASS_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i32, ppid: i32, dead: bool) -> ProcEntry {
        ProcEntry { pid, ppid, dead }
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(
            parse_stat("42 (node) S 7 42 42 0 -1 4194560"),
            Some(entry(42, 7, false))
        );
        assert_eq!(parse_stat("43 (a) b (c) Z 42 1 1 0"), Some(entry(43, 42, true)));
        assert_eq!(parse_stat("44 (sh) R"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_are_found_through_every_generation_but_not_beside() {
        let table = [
            entry(1, 0, false),
            entry(10, 1, false),
            entry(11, 10, false),
            entry(12, 11, true),
            entry(13, 11, false),
            entry(14, 13, false),
            entry(20, 1, false),
            entry(21, 20, false),
        ];
        let mut found = live_descendants(10, &table);
        found.sort_unstable();
        assert_eq!(found, [11, 13, 14]);
        assert!(live_descendants(14, &table).is_empty());
    }

    /// Children of this test process (so their pids stay ours until reaped).
    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep").arg("1000").spawn().unwrap()
    }

    #[test]
    fn a_sweep_kills_the_whole_tree_below_its_root_and_reports_what_its_bound_left() {
        // root: `sh` with a child `sleep` and a grandchild through a subshell.
        let mut root = std::process::Command::new("sh")
            .args(["-c", "sleep 1000 & (sleep 1000 & wait) & wait"])
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(i32::try_from(root.id()).unwrap());
        let mut beside = sleeper();
        let deadline = Instant::now() + Duration::from_secs(10);
        while live_descendants(pid.as_raw(), &snapshot()).len() < 3 {
            assert!(Instant::now() < deadline, "the tree did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        // A zero bound reports what is there and kills nothing.
        let left = kill_descendants(pid, Duration::ZERO);
        assert_eq!((left.killed, left.left), (0, 3));
        let swept = kill_descendants(pid, SWEEP_TIME_LIMIT);
        assert_eq!((swept.killed, swept.left), (3, 0));
        assert!(live_descendants(pid.as_raw(), &snapshot()).is_empty());
        // Processes beside the tree are untouched; the root was not
        // signalled (its `wait` returns once its children are gone).
        assert!(
            beside.try_wait().unwrap().is_none(),
            "a process outside the tree was killed"
        );
        beside.kill().unwrap();
        beside.wait().unwrap();
        let status = root.wait().unwrap();
        assert!(status.code().is_some(), "the root was signalled: {status}");
    }

    #[test]
    fn a_parent_loop_in_a_torn_snapshot_ends() {
        let table = [entry(5, 6, false), entry(6, 5, false)];
        assert_eq!(live_descendants(5, &table), [6]);
    }
}
