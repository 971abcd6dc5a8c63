//! Issue 12, items 3 and 6 over HTTP: processes a run starts die with it
//! (process runtime), and the files storage leaves no lock file behind and
//! reads files with a byte cap.

use faas_tests::{db_s3_mode, spawn_app, TestApp};
use serde_json::{json, Value};

/// Starts a `detached` `sleep` and a `setsid` double fork of one, writes
/// their pids to `PID_FILE`, then ends as `input.end` says.
const ESCAPES: &str = r#"
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
export async function handler(input) {
  const { SLEEP, SETSID, SH, PID_FILE } = process.env;
  const detached = spawn(SLEEP, ["1000"], { detached: true, stdio: "ignore" });
  detached.unref();
  const forker = spawn(SETSID, [SH, "-c", `${SLEEP} 1000 </dev/null >/dev/null 2>&1 & echo $!`], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let out = "";
  forker.stdout.on("data", (d) => { out += d; });
  await new Promise((resolve) => forker.on("close", resolve));
  writeFileSync(PID_FILE, JSON.stringify([detached.pid, Number(out.trim())]));
  if (input.end === "hang") await new Promise(() => setInterval(() => {}, 1000));
  return { ok: true, data: input.end };
}"#;

/// The absolute path of a program on the host `PATH` (runs get no `PATH`).
fn program(name: &str) -> String {
    let paths = std::env::var_os("PATH").expect("PATH is set");
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed"))
        .display()
        .to_string()
}

/// Whether `pid` runs (neither gone nor a zombie).
fn is_running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|text| text.rsplit(')').next().and_then(|rest| rest.trim().chars().next()))
        .is_some_and(|state| !matches!(state, 'Z' | 'X'))
}

async fn invoke_escapes(app: &TestApp, end: &str, pid_file: &std::path::Path) -> Value {
    let env = json!({
        "SLEEP": program("sleep"),
        "SETSID": program("setsid"),
        "SH": program("sh"),
        "PID_FILE": pid_file.display().to_string(),
    });
    let r = app
        .post(
            "/functions/escape/invoke",
            json!({"input": {"end": end}, "env": env, "timeout_ms": 4000}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn detached_and_setsid_children_die_before_the_invoke_answers() {
    for mode in ["cold", "warm"] {
        let app = spawn_app(&[("LOWCODE_FAAS_EXECUTION_MODE", mode)]).await;
        app.create_function("", "escape", ESCAPES, json!({})).await;
        let pids = tempfile::tempdir().unwrap();
        for end in ["return", "return", "hang"] {
            let pid_file = pids.path().join(format!("{end}.json"));
            let res = invoke_escapes(&app, end, &pid_file).await;
            if end == "hang" {
                assert_eq!(res["error_code"], "TIMEOUT", "{mode}: {res}");
            } else {
                assert_eq!(res["status"], "success", "{mode}: {res}");
            }
            let started: Vec<u64> = serde_json::from_str(&std::fs::read_to_string(&pid_file).unwrap()).unwrap();
            assert_eq!(started.len(), 2);
            for pid in started {
                assert!(!is_running(pid), "{mode} {end}: process {pid} outlived its invoke");
            }
        }
        app.stop().await;
    }
}

/// Every `*.lock` file below `dir`, relative to it.
fn lock_files(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|e| e == "lock") {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn deletes_leave_no_lock_files_and_oversize_sources_are_refused() {
    if db_s3_mode() {
        // Both behaviours belong to the files storage.
        return;
    }
    let app = spawn_app(&[]).await;
    let data = app.data_dir();
    let r = app.post("/collections", json!({"path": "team"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.create_function("team", "f", "export const handler = () => ({ ok: true });", json!({}))
        .await;
    app.create_function("", "g", "export const handler = () => ({ ok: true });", json!({}))
        .await;
    assert_eq!(app.delete("/collections/team/functions/f").await.status, 204);
    assert_eq!(app.delete("/functions/g").await.status, 204);
    assert_eq!(app.delete("/functions/never").await.status, 404);
    assert_eq!(app.delete("/collections/team").await.status, 204);
    assert_eq!(lock_files(&data), Vec::<String>::new());

    // A hand-placed source far over the cap (sparse: nothing on disk).
    let functions = data.join("collections/__root__/functions");
    std::fs::create_dir_all(&functions).unwrap();
    std::fs::File::create(functions.join("huge.mjs"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let r = app.get("/functions/huge").await;
    assert_eq!((r.status, r.code()), (500, "INTERNAL"), "{}", r.text);
}
