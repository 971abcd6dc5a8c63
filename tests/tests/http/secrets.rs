//! Secrets: `LOWCODE_FAAS_REDACT_ENV` masks env values in every response
//! while writes take them and runs get them; env values are encrypted at
//! rest with `LOWCODE_FAAS_ENV_ENCRYPTION_KEY` on both storages, with key
//! rotation through `LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS`.

use faas_tests::{canned_server, db_s3_mode, spawn_app, storage_vars, Reply, TestApp};
use serde_json::{json, Value};

use crate::dispatcher::invoke;

const COLLECTION_SECRET: &str = "coll-secret-1f8a3c";
const FUNCTION_SECRET: &str = "func-secret-77b2e0";
const REQUEST_SECRET: &str = "req-secret-c41d09";

/// Returns the three secrets it sees, so a test can tell runs get the values.
const READS_ENV: &str = r#"export async function handler() {
  return { ok: true, data: [process.env.C_SECRET, process.env.F_SECRET, process.env.R_SECRET] };
}"#;

fn assert_no_secret(what: &str, reply: &Reply) {
    for secret in [COLLECTION_SECRET, FUNCTION_SECRET] {
        assert!(!reply.text.contains(secret), "{what} shows {secret}: {}", reply.text);
    }
}

async fn run_sees_every_value(app: &TestApp) {
    let res = invoke(
        app,
        "/collections/team/functions/f/invoke",
        json!({"env": {"R_SECRET": REQUEST_SECRET}}),
    )
    .await;
    assert_eq!(
        res["output"]["data"],
        json!([COLLECTION_SECRET, FUNCTION_SECRET, REQUEST_SECRET]),
        "{res}"
    );
}

#[tokio::test]
async fn redact_env_masks_every_value_in_responses_while_writes_and_runs_use_them() {
    let source = canned_server(format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{READS_ENV}",
        READS_ENV.len()
    ))
    .await;
    let app = spawn_app(&[
        ("LOWCODE_FAAS_REDACT_ENV", "true"),
        ("LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE", "true"),
    ])
    .await;
    let masked = json!({"F_SECRET": "***"});

    let r = app
        .post(
            "/collections",
            json!({"path": "team", "env": {"C_SECRET": COLLECTION_SECRET}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_no_secret("collection create", &r);
    let r = app
        .put("/collections/team/env", json!({"env": {"C_SECRET": COLLECTION_SECRET}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_no_secret("collection env", &r);

    let r = app
        .post(
            "/collections/team/functions",
            json!({"name": "f", "source_code": READS_ENV, "env": {"F_SECRET": FUNCTION_SECRET}}),
        )
        .await;
    assert_eq!((r.status, &r.body["env"]), (201, &masked), "{}", r.text);
    let r = app
        .put(
            "/collections/team/functions/f",
            json!({"env": {"F_SECRET": FUNCTION_SECRET}}),
        )
        .await;
    assert_eq!((r.status, &r.body["env"]), (200, &masked), "{}", r.text);
    // A pull keeps the env (the real one, as the run below shows).
    let r = app
        .post(
            "/collections/team/functions/f/pull",
            json!({"source_url": format!("http://{source}/f.mjs")}),
        )
        .await;
    assert_eq!((r.status, &r.body["env"]), (200, &masked), "{}", r.text);
    let current = r.body["version"].clone();

    for path in [
        "/collections/team/functions/f".to_owned(),
        format!("/collections/team/functions/f?version={current}"),
        "/functions/f?collection_path=team".to_owned(),
    ] {
        let r = app.get(&path).await;
        assert_eq!((r.status, &r.body["env"]), (200, &masked), "{path}: {}", r.text);
    }
    for path in [
        "/collections/team/functions",
        "/functions?collection_path=team",
        "/collections/team/functions/f/versions",
        "/collections",
        "/collections?prefix=team",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_no_secret(path, &r);
    }
    run_sees_every_value(&app).await;

    // Without the setting the values are shown (the default).
    let plain = spawn_app(&[]).await;
    let r = plain
        .create_function("", "g", READS_ENV, json!({"F_SECRET": FUNCTION_SECRET}))
        .await;
    assert_eq!(r.body["env"], json!({"F_SECRET": FUNCTION_SECRET}));
}

const KEY_1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY_2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// Everything the storage holds as text: every file under the data dir
/// (`files`), every `env_json` row (`db_s3`).
async fn at_rest(data: &std::path::Path, storage: &[(String, String)]) -> Vec<String> {
    if db_s3_mode() {
        use sqlx::Connection;
        let dsn = storage
            .iter()
            .find(|(k, _)| k == "LOWCODE_FAAS_POSTGRES_DSN")
            .map(|(_, v)| v.clone())
            .unwrap();
        let mut db = sqlx::PgConnection::connect(&dsn).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT env_json::text FROM collection_paths UNION ALL SELECT env_json::text FROM functions \
             UNION ALL SELECT env_json::text FROM function_versions",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        db.close().await.ok();
        return rows;
    }
    let mut out = Vec::new();
    let mut todo = vec![data.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned());
            }
        }
    }
    out
}

async fn app_with(data: &std::path::Path, storage: &[(String, String)], keys: &[(&str, &str)]) -> TestApp {
    let data = data.display().to_string();
    let mut extra: Vec<(&str, &str)> = vec![("LOWCODE_FAAS_DATA_DIR", &data)];
    extra.extend(storage.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    extra.extend_from_slice(keys);
    if storage.is_empty() {
        // files mode: no storage vars to pass, so spawn_app must not add any.
        extra.push(("LOWCODE_FAAS_STORAGE", "files"));
    }
    spawn_app(&extra).await
}

#[tokio::test]
async fn env_values_are_encrypted_at_rest_and_keys_rotate() {
    let data = tempfile::tempdir().unwrap();
    let storage = storage_vars().await;
    let app = app_with(data.path(), &storage, &[("LOWCODE_FAAS_ENV_ENCRYPTION_KEY", KEY_1)]).await;
    let r = app
        .post(
            "/collections",
            json!({"path": "team", "env": {"C_SECRET": COLLECTION_SECRET}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/collections/team/functions",
            json!({"name": "f", "source_code": READS_ENV, "env": {"F_SECRET": FUNCTION_SECRET}}),
        )
        .await;
    assert_eq!(r.body["env"], json!({"F_SECRET": FUNCTION_SECRET}), "reads are plain");
    run_sees_every_value(&app).await;
    let sealed_v1 = at_rest(data.path(), &storage).await;
    assert!(
        sealed_v1
            .iter()
            .all(|t| !t.contains(COLLECTION_SECRET) && !t.contains(FUNCTION_SECRET)),
        "{sealed_v1:?}"
    );
    assert_eq!(
        sealed_v1.iter().filter(|t| t.contains("lcfaas:enc:v1:")).count(),
        if db_s3_mode() { 3 } else { 2 }
    );
    // A request value that looks sealed is refused.
    let r = app
        .put(
            "/collections/team/env",
            json!({"env": {"C_SECRET": "lcfaas:enc:v1:x:y"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_ENV"), "{}", r.text);
    app.stop().await;

    // Without the key: a clear error, never the ciphertext handed to a run.
    let keyless = app_with(data.path(), &storage, &[]).await;
    let r = keyless.get("/collections/team/functions/f").await;
    assert_eq!((r.status, r.code()), (500, "INTERNAL"), "{}", r.text);
    assert!(!r.text.contains("lcfaas:enc:"), "{}", r.text);
    let r = keyless.post("/collections/team/functions/f/invoke", json!({})).await;
    assert_eq!((r.status, r.code()), (500, "INTERNAL"), "{}", r.text);
    keyless.stop().await;

    // Rotation: key 2 current, key 1 still readable; the next writes re-seal.
    let rotated = app_with(
        data.path(),
        &storage,
        &[
            ("LOWCODE_FAAS_ENV_ENCRYPTION_KEY", KEY_2),
            ("LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS", KEY_1),
        ],
    )
    .await;
    run_sees_every_value(&rotated).await;
    let r = rotated
        .put("/collections/team/env", json!({"env": {"C_SECRET": COLLECTION_SECRET}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = rotated
        .put("/collections/team/functions/f", json!({"source_code": READS_ENV}))
        .await;
    assert_eq!(
        r.body["env"],
        json!({"F_SECRET": FUNCTION_SECRET}),
        "an update keeps the env"
    );
    rotated.stop().await;

    let only_new = app_with(data.path(), &storage, &[("LOWCODE_FAAS_ENV_ENCRYPTION_KEY", KEY_2)]).await;
    run_sees_every_value(&only_new).await;
    let now = at_rest(data.path(), &storage).await;
    assert!(now
        .iter()
        .all(|t| !t.contains(COLLECTION_SECRET) && !t.contains(FUNCTION_SECRET)));
    let r: Value = only_new.get("/collections/team/functions/f").await.body;
    assert_eq!(r["env"], json!({"F_SECRET": FUNCTION_SECRET}));
}
