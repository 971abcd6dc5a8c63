//! The faults injected in turn, and which unexpected answers they explain.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use faas_tests::proc_support::Server;

use crate::environment::{docker_ids, shell, S3};
use crate::traffic::Oddity;

/// A fault and the time its effects count as explained (from one second
/// before it until `SOAK_SETTLE_S` after the system was ready again).
pub(crate) struct Window {
    pub(crate) fault: &'static str,
    pub(crate) from: Duration,
    pub(crate) to: Duration,
}

/// The faults of this run and what they need.
pub(crate) struct Faults {
    /// `SOAK_PG_STOP`: a shell command stopping PostgreSQL.
    pub(crate) pg_stop: Option<String>,
    /// `SOAK_PG_START`: a shell command starting it again.
    pub(crate) pg_start: Option<String>,
    /// The owner label of the worker's containers.
    pub(crate) instance: String,
}

impl Faults {
    /// True when the PostgreSQL fault is skipped (no commands to stop and start it).
    pub(crate) fn skips_postgres(&self) -> bool {
        self.pg_stop.is_none() || self.pg_start.is_none()
    }

    /// The faults, in the order they are injected.
    pub(crate) fn kinds(&self) -> Vec<&'static str> {
        [
            "worker kill -9",
            "postgres stop",
            "s3 stop",
            "container kill",
            "dispatcher kill -9",
        ]
        .into_iter()
        .filter(|f| *f != "postgres stop" || (self.pg_stop.is_some() && self.pg_start.is_some()))
        .collect()
    }

    /// Injects `fault` and undoes it; returns a note for the report.
    pub(crate) async fn inject(
        &self,
        fault: &str,
        worker: &mut Server,
        dispatcher: &mut Server,
        s3: &mut S3,
    ) -> String {
        let instance = &self.instance;
        match fault {
            "worker kill -9" => {
                worker.kill9();
                tokio::time::sleep(Duration::from_secs(2)).await;
                worker.spawn().await;
                "worker restarted".to_string()
            }
            "dispatcher kill -9" => {
                dispatcher.kill9();
                tokio::time::sleep(Duration::from_secs(2)).await;
                dispatcher.spawn().await;
                "dispatcher restarted".to_string()
            }
            "postgres stop" => {
                let stopped = shell(self.pg_stop.as_deref().unwrap_or("false"));
                tokio::time::sleep(Duration::from_secs(5)).await;
                let started = shell(self.pg_start.as_deref().unwrap_or("false"));
                format!("stop ok: {stopped}, start ok: {started}")
            }
            "s3 stop" => {
                s3.stop();
                tokio::time::sleep(Duration::from_secs(5)).await;
                s3.start().await;
                "s3s-fs restarted".to_string()
            }
            _ => {
                let busy = docker_ids(&[
                    &format!("label=lowcode-faas.owner={instance}"),
                    "label=lowcode-faas.run_id",
                    "status=running",
                ]);
                let any = docker_ids(&[&format!("label=lowcode-faas.owner={instance}"), "status=running"]);
                match busy.first().or(any.first()) {
                    Some(id) => {
                        let ok = Command::new("docker")
                            .args(["kill", id])
                            .stdout(Stdio::null())
                            .status()
                            .is_ok_and(|s| s.success());
                        format!(
                            "docker kill {} ({}): {ok}",
                            &id[..12.min(id.len())],
                            if busy.is_empty() { "idle" } else { "busy" }
                        )
                    }
                    None => "no running container to kill".to_string(),
                }
            }
        }
    }
}

/// The unexpected answers per fault whose window holds them, and those no
/// window holds.
pub(crate) fn explain<'a>(
    oddities: &'a [Oddity],
    windows: &[Window],
) -> (BTreeMap<&'static str, u64>, Vec<&'a Oddity>) {
    let explained = |o: &Oddity| windows.iter().find(|w| o.at >= w.from && o.at <= w.to).map(|w| w.fault);
    let mut by_fault: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unexplained: Vec<&Oddity> = Vec::new();
    for o in oddities {
        match explained(o) {
            Some(f) => *by_fault.entry(f).or_default() += 1,
            None => unexplained.push(o),
        }
    }
    (by_fault, unexplained)
}
