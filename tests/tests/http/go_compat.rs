//! Data of the Go version after the switch (issue #15): names it could
//! store, env keys today's rules refuse, a Go `data/` tree, and a database
//! plus bucket created by it.

use faas_tests::{db_s3_vars, spawn_app_on, storage_vars, TestApp};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};

use crate::dispatcher::invoke;

/// The Go version's DDL, as it creates it at start-up.
const GO_V1_SCHEMA: &str = include_str!("../../../faas-adapters/testdata/go_v1_schema.sql");

/// Echoes the variables the tests look at (`null` when unset).
const ENV_ECHO: &str = r#"export async function handler() {
  const pick = (k) => process.env[k] ?? null;
  return { ok: true, data: { version: 0, A: pick("A"), SHOP: pick("SHOP"), TEAM: pick("TEAM"), FN: pick("FN"),
    SHARED: pick("SHARED"), X: pick("LOWCODE_FAAS_X"), APFEL: pick("ÄPFEL") } };
}"#;

fn echo_v(version: u64) -> String {
    ENV_ECHO.replace("version: 0", &format!("version: {version}"))
}

fn as_pairs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The `path` of each collection of a `GET /collections` reply.
fn collection_paths(reply: &Value) -> Vec<&str> {
    reply
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect()
}

fn names(reply: &Value) -> Vec<String> {
    reply
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn stored_go_names_stay_usable_and_new_ones_need_the_setting() {
    // Two apps over one storage (the suite's: files or db_s3).
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().display().to_string();
    let storage = storage_vars().await;
    let mut extra = as_pairs(&storage);
    extra.push(("LOWCODE_FAAS_DATA_DIR", &dir));
    let mut legacy = extra.clone();
    legacy.push(("LOWCODE_FAAS_LEGACY_NAMES", "true"));

    let app = spawn_app_on(tempfile::tempdir().unwrap(), &legacy).await;
    let r = app
        .post("/collections", json!({"path": "shop", "env": {"SHOP": "1"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.create_function("", "my.func", ENV_ECHO, json!({"A": "1"})).await;
    assert_eq!(
        (r.body["id"].as_str(), r.body["deployment_id"].as_str()),
        (Some("my.func"), Some("my.func@v1"))
    );
    let r = app.create_function("shop", "Grüße Welt", ENV_ECHO, json!({})).await;
    assert_eq!(r.body["id"], "shop/Grüße Welt");
    for bad in ["bad..name", ".", " padded", "a\\b", "a\u{0}b"] {
        let r = app
            .post("/functions", json!({"name": bad, "source_code": ENV_ECHO}))
            .await;
        assert_eq!((r.status, r.code()), (400, "INVALID_NAME"), "{bad:?}: {}", r.text);
    }
    app.stop().await;

    // Without the setting: new names follow today's grammar, stored ones work.
    let app = spawn_app_on(tempfile::tempdir().unwrap(), &extra).await;
    let r = app
        .post("/functions", json!({"name": "other.func", "source_code": ENV_ECHO}))
        .await;
    assert_eq!((r.status, r.code()), (400, "INVALID_NAME"), "{}", r.text);
    assert_eq!(names(&app.get("/functions").await.body), ["my.func"]);
    assert_eq!(
        names(&app.get("/collections/shop/functions").await.body),
        ["Grüße Welt"]
    );
    let r = app.get("/functions/my.func").await;
    assert_eq!((r.status, &r.body["env"]), (200, &json!({"A": "1"})), "{}", r.text);
    let res = invoke(&app, "/functions/my.func/invoke", json!({})).await;
    assert_eq!(
        (res["status"].as_str(), res["function_id"].as_str()),
        (Some("success"), Some("my.func")),
        "{res}"
    );
    assert_eq!(res["output"]["data"]["A"], "1");
    let encoded = "/collections/shop/functions/Gr%C3%BC%C3%9Fe%20Welt";
    let res = invoke(&app, &format!("{encoded}/invoke"), json!({})).await;
    assert_eq!(res["function_id"], "shop/Grüße Welt", "{res}");
    assert_eq!(res["output"]["data"]["SHOP"], "1");

    let r = app.put("/functions/my.func", json!({"source_code": echo_v(2)})).await;
    assert_eq!((r.status, r.body["version"].as_u64()), (200, Some(2)), "{}", r.text);
    let r = app.get("/functions/my.func/versions").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let res = invoke(&app, "/functions/my.func/invoke", json!({})).await;
    assert_eq!(
        (res["output"]["data"]["version"].as_u64(), &res["output"]["data"]["A"]),
        (Some(2), &json!("1"))
    );

    // The same traversal guarantees as today's names.
    for path in [
        "/functions/bad..name",
        "/functions/..%2Fetc",
        "/functions/a%5Cb",
        "/functions/a%00b",
    ] {
        let r = app.get(path).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_NAME"), "{path}: {}", r.text);
    }

    assert_eq!(app.delete("/functions/my.func").await.status, 204);
    assert_eq!(app.delete(encoded).await.status, 204);
    let r = app.get("/functions/my.func").await;
    assert_eq!((r.status, r.code()), (404, "FUNCTION_NOT_FOUND"));
    assert!(names(&app.get("/collections/shop/functions").await.body).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_go_data_tree_keeps_its_dotted_names_and_reports_refused_env_keys() {
    let data = tempfile::tempdir().unwrap();
    let legacy = data.path().join("functions");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(legacy.join("my.func.mjs"), ENV_ECHO).unwrap();
    std::fs::write(
        legacy.join("my.func.env.json"),
        r#"{"A":"1","LOWCODE_FAAS_X":"x","ÄPFEL":"apple"}"#,
    )
    .unwrap();
    let shop = data.path().join("collections/shop/functions");
    std::fs::create_dir_all(&shop).unwrap();
    std::fs::write(shop.join("cart.v2.mjs"), ENV_ECHO).unwrap();
    std::fs::write(
        data.path().join("collections/shop/collection.env.json"),
        r#"{"SHOP":"1","NODE_OPTIONS":"--require x"}"#,
    )
    .unwrap();

    // A segment today's grammar reserves, as the Go version stored it.
    let env_dir = data.path().join("collections/shop/env/functions");
    std::fs::create_dir_all(&env_dir).unwrap();
    std::fs::write(env_dir.join("stock.mjs"), ENV_ECHO).unwrap();

    // A Go data/ tree is a files-storage feature: files in every suite mode.
    let app = spawn_app_on(data, &[("LOWCODE_FAAS_STORAGE", "files")]).await;
    assert_eq!(names(&app.get("/functions").await.body), ["my.func"]);
    assert_eq!(names(&app.get("/collections/shop/functions").await.body), ["cart.v2"]);
    assert_eq!(names(&app.get("/collections/shop/env/functions").await.body), ["stock"]);
    let res = invoke(&app, "/collections/shop/env/functions/stock/invoke", json!({})).await;
    assert_eq!(
        (&res["deployment_id"], &res["output"]["data"]["SHOP"]),
        (&json!("shop/env/stock@v1"), &json!("1")),
        "{res}"
    );
    let r = app.get("/functions/my.func").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["env"], json!({"A": "1"}));
    assert_eq!(
        r.body["ignored_env_keys"],
        json!(["LOWCODE_FAAS_X", "ÄPFEL"]),
        "stored keys today's rules refuse are reported, not dropped silently"
    );
    let res = invoke(&app, "/functions/my.func/invoke", json!({})).await;
    let out = &res["output"]["data"];
    assert_eq!(
        (&out["A"], &out["X"], &out["APFEL"]),
        (&json!("1"), &Value::Null, &Value::Null),
        "{res}"
    );
    let res = invoke(&app, "/collections/shop/functions/cart.v2/invoke", json!({})).await;
    assert_eq!(res["deployment_id"], "shop/cart.v2@v1", "{res}");
    assert_eq!(res["output"]["data"]["SHOP"], "1", "{res}");
    let r = app.get("/collections").await;
    assert_eq!(
        r.body,
        json!([
            {"path": "shop", "created_at": r.body[0]["created_at"], "ignored_env_keys": ["NODE_OPTIONS"]},
            {"path": "shop/env", "created_at": r.body[1]["created_at"]}
        ]),
        "a collection env key today's rules refuse is reported"
    );

    let r = app.put("/functions/my.func", json!({"source_code": echo_v(2)})).await;
    assert_eq!((r.status, r.body["version"].as_u64()), (200, Some(2)), "{}", r.text);
    assert_eq!(r.body["env"], json!({"A": "1"}), "the valid env is kept");
    assert!(r.body.get("ignored_env_keys").is_none(), "{}", r.text);
    assert_eq!(app.delete("/functions/my.func").await.status, 204);
    assert_eq!(app.delete("/collections/shop/functions/cart.v2").await.status, 204);
    assert!(names(&app.get("/functions").await.body).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn collection_segments_the_go_version_stored_stay_usable() {
    // The suite's storage (files or db_s3); new legacy paths need the setting.
    let storage = storage_vars().await;
    let strict = spawn_app_on(tempfile::tempdir().unwrap(), &as_pairs(&storage)).await;
    let r = strict.post("/collections", json!({"path": "team/env"})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("INVALID_COLLECTION_PATH")),
        "{}",
        r.text
    );
    strict.stop().await;

    let mut vars = as_pairs(&storage);
    vars.push(("LOWCODE_FAAS_LEGACY_NAMES", "true"));
    let app = spawn_app_on(tempfile::tempdir().unwrap(), &vars).await;
    let long = "l".repeat(100);
    for path in ["team".to_owned(), "team/env".to_owned(), format!("team/{long}")] {
        let r = app
            .post("/collections", json!({"path": path, "env": {"SHOP": path}}))
            .await;
        assert_eq!(r.status, 201, "{path}: {}", r.text);
    }
    let r = app.get("/collections?prefix=team").await;
    let paths = collection_paths(&r.body);
    assert_eq!(paths, ["team", "team/env", &format!("team/{long}")], "{}", r.text);

    for cp in ["team/env".to_owned(), format!("team/{long}")] {
        let r = app
            .post(
                &format!("/collections/{cp}/functions"),
                json!({"name": "f", "source_code": ENV_ECHO}),
            )
            .await;
        assert_eq!(r.status, 201, "{cp}: {}", r.text);
        assert_eq!(
            names(&app.get(&format!("/collections/{cp}/functions")).await.body),
            ["f"]
        );
        let res = invoke(&app, &format!("/collections/{cp}/functions/f/invoke"), json!({})).await;
        assert_eq!(res["output"]["data"]["SHOP"], json!(cp), "{res}");
        let r = app
            .put(&format!("/collections/{cp}/env"), json!({"env": {"SHOP": "new"}}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let res = invoke(&app, &format!("/functions/f/invoke?collection_path={cp}"), json!({})).await;
        assert_eq!(res["output"]["data"]["SHOP"], "new", "{res}");
        let r = app
            .put(
                &format!("/collections/{cp}/functions/f"),
                json!({"source_code": echo_v(2)}),
            )
            .await;
        assert_eq!((r.status, r.body["version"].as_u64()), (200, Some(2)), "{}", r.text);
        assert_eq!(app.delete(&format!("/collections/{cp}/functions/f")).await.status, 204);
        assert_eq!(app.delete(&format!("/collections/{cp}")).await.status, 204);
    }

    // A `functions` segment: the files layout cannot hold it apart from the
    // functions folder of its parent; PostgreSQL + S3 can.
    let r = app
        .post("/collections", json!({"path": "team/functions", "env": {"SHOP": "f"}}))
        .await;
    if !faas_tests::db_s3_mode() {
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("INVALID_COLLECTION_PATH")),
            "{}",
            r.text
        );
        app.stop().await;
        return;
    }
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/collections/team/functions/functions",
            json!({"name": "g", "source_code": ENV_ECHO}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["id"].as_str()),
        (201, Some("team/functions/g")),
        "{}",
        r.text
    );
    assert_eq!(
        names(&app.get("/functions?collection_path=team/functions").await.body),
        ["g"]
    );
    assert!(
        names(&app.get("/collections/team/functions").await.body).is_empty(),
        "the functions of `team`"
    );
    let res = invoke(&app, "/collections/team/functions/functions/g/invoke", json!({})).await;
    assert_eq!(res["output"]["data"]["SHOP"], "f", "{res}");
    let r = app.get("/collections/team/functions/functions/g").await;
    assert_eq!(
        (r.status, r.body["collection_path"].as_str()),
        (200, Some("team/functions")),
        "{}",
        r.text
    );
    assert_eq!(app.delete("/collections/team/functions/functions/g").await.status, 204);
    assert_eq!(app.delete("/collections/team/functions").await.status, 204);
    let r = app.get("/collections?prefix=team").await;
    assert_eq!(
        r.body,
        json!([{"path": "team", "created_at": r.body[0]["created_at"]}]),
        "{}",
        r.text
    );
    app.stop().await;
}

/// The S3 client of the test services, without a prefix (as the Go version).
fn s3(vars: &[(String, String)]) -> impl ObjectStore {
    let var = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    AmazonS3Builder::new()
        .with_endpoint(var("LOWCODE_FAAS_S3_ENDPOINT"))
        .with_allow_http(true)
        .with_bucket_name(var("LOWCODE_FAAS_S3_BUCKET"))
        .with_region("us-east-1")
        .with_access_key_id(var("LOWCODE_FAAS_S3_ACCESS_KEY"))
        .with_secret_access_key(var("LOWCODE_FAAS_S3_SECRET_KEY"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_go_database_and_bucket_work_after_the_switch() {
    let mut vars = db_s3_vars().await;
    let dsn = vars
        .iter()
        .find(|(k, _)| k == "LOWCODE_FAAS_POSTGRES_DSN")
        .unwrap()
        .1
        .clone();
    // Go's keys have no prefix; the collection carries the (unique) database
    // name so parallel runs on the shared bucket never meet.
    for (k, v) in &mut vars {
        if k == "LOWCODE_FAAS_S3_PREFIX" {
            v.clear();
        }
    }
    let team = dsn.rsplit('/').next().unwrap().to_owned();
    let api = format!("{team}/api");

    let mut conn = sqlx::PgConnection::connect(&dsn).await.unwrap();
    conn.execute(GO_V1_SCHEMA).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO collection_paths VALUES ('{team}', '{{\"TEAM\":\"t\",\"SHARED\":\"team\",\"1X\":\"y\"}}', now()), \
             ('{api}', NULL, now()); \
         INSERT INTO functions VALUES \
             ('{api}', 'hello', 'javascript', '{{\"FN\":\"f\",\"SHARED\":\"fn\",\"ÄPFEL\":\"x\"}}', now()), \
             ('{api}', 'my.func', 'javascript', 'null', now()); \
         INSERT INTO function_versions (collection_path, function_name, version, s3_key, created_at) VALUES \
             ('{api}', 'hello', 1, 'functions/{api}/hello/v1.mjs', now()), \
             ('{api}', 'hello', 2, 'functions/{api}/hello/v2.mjs', now()), \
             ('{api}', 'my.func', 1, 'functions/{api}/my.func/v1.mjs', now());"
    )))
    .await
    .unwrap();
    let bucket = s3(&vars);
    for (key, version) in [("hello/v1.mjs", 1), ("hello/v2.mjs", 2), ("my.func/v1.mjs", 7)] {
        let path = ObjectPath::parse(format!("functions/{api}/{key}")).unwrap();
        bucket.put(&path, PutPayload::from(echo_v(version))).await.unwrap();
    }

    let app: TestApp = spawn_app_on(tempfile::tempdir().unwrap(), &as_pairs(&vars)).await;
    let r = app.get("/collections").await;
    let paths = collection_paths(&r.body);
    assert_eq!(paths, [team.as_str(), api.as_str()], "{}", r.text);
    assert_eq!(r.body[0]["ignored_env_keys"], json!(["1X"]), "{}", r.text);
    assert!(r.body[1].get("ignored_env_keys").is_none(), "{}", r.text);
    let r = app.get(&format!("/collections/{api}/functions")).await;
    let rows: Vec<(&str, u64)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(rows, [("hello", 2), ("my.func", 1)], "{}", r.text);

    let hello = format!("/collections/{api}/functions/hello");
    let r = app.get(&hello).await;
    assert_eq!((r.status, r.body["version"].as_u64()), (200, Some(2)), "{}", r.text);
    assert_eq!(r.body["env"], json!({"FN": "f", "SHARED": "fn"}));
    assert_eq!(r.body["ignored_env_keys"], json!(["ÄPFEL"]));
    let r = app.get(&format!("{hello}?version=1")).await;
    assert_eq!((r.status, r.body["version"].as_u64()), (200, Some(1)), "{}", r.text);

    // Invoked with the collection env (function env wins over it).
    let res = invoke(&app, &format!("{hello}/invoke"), json!({})).await;
    let out = &res["output"]["data"];
    assert_eq!(res["status"], "success", "{res}");
    assert_eq!(
        (&out["version"], &out["TEAM"], &out["FN"], &out["SHARED"], &out["APFEL"]),
        (&json!(2), &json!("t"), &json!("f"), &json!("fn"), &Value::Null),
        "{res}"
    );
    let res = invoke(&app, &format!("{hello}/invoke"), json!({"version": 1})).await;
    assert_eq!(res["output"]["data"]["version"], 1, "{res}");
    let res = invoke(&app, &format!("/collections/{api}/functions/my.func/invoke"), json!({})).await;
    assert_eq!(res["output"]["data"]["version"], 7, "{res}");

    // The next version continues Go's numbering, at Go's key layout.
    let r = app.put(&hello, json!({"source_code": echo_v(3)})).await;
    assert_eq!((r.status, r.body["version"].as_u64()), (200, Some(3)), "{}", r.text);
    let key: String =
        sqlx::query_scalar("SELECT s3_key FROM function_versions WHERE function_name = 'hello' AND version = 3")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(key, format!("functions/{api}/hello/v3.mjs"));
    let stored = bucket
        .get(&ObjectPath::parse(&key).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), echo_v(3).as_bytes());
    let res = invoke(&app, &format!("{hello}/invoke"), json!({})).await;
    assert_eq!(
        (&res["output"]["data"]["version"], &res["output"]["data"]["FN"]),
        (&json!(3), &json!("f"))
    );
    conn.close().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_keyword_value_dsn_over_verified_tls_serves_the_api() {
    let mut vars = db_s3_vars().await;
    let url = vars
        .iter()
        .find(|(k, _)| k == "LOWCODE_FAAS_POSTGRES_DSN")
        .unwrap()
        .1
        .clone();
    let database = url.rsplit('/').next().unwrap().to_owned();
    let port = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|h| h.rsplit_once(':'));
    let port = port.map_or("5432", |(_, port)| port).to_owned();
    let ca = std::env::var("LOWCODE_FAAS_TEST_POSTGRES_TLS_CA")
        .expect("LOWCODE_FAAS_TEST_POSTGRES_TLS_CA is not set: run scripts/start-test-services.sh");
    // The Go version's deployments often carry libpq's form; here with TLS
    // verified against the test CA, as a managed database needs.
    let keyword = format!(
        "host=localhost port={port} dbname={database} user=faas password=faas sslmode=verify-full sslrootcert={ca}"
    );
    for (k, v) in &mut vars {
        if k == "LOWCODE_FAAS_POSTGRES_DSN" {
            v.clone_from(&keyword);
        }
    }
    let app = spawn_app_on(tempfile::tempdir().unwrap(), &as_pairs(&vars)).await;
    app.create_function("", "tls", ENV_ECHO, json!({"A": "tls"})).await;
    let res = invoke(&app, "/functions/tls/invoke", json!({})).await;
    assert_eq!(res["output"]["data"]["A"], "tls", "{res}");
    app.stop().await;

    // A malformed one stops start-up with a message naming the variable.
    for (k, v) in &mut vars {
        if k == "LOWCODE_FAAS_POSTGRES_DSN" {
            *v = "host=localhost dbname password=faas".into();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let err = faas_server::Settings::from_vars(faas_tests::test_vars(dir.path(), &as_pairs(&vars))).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("LOWCODE_FAAS_POSTGRES_DSN") && message.contains("'dbname'"),
        "{message}"
    );
    assert!(!message.contains("password=faas"), "{message}");
}

#[tokio::test]
async fn a_stored_go_name_runs_through_a_worker() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("functions")).unwrap();
    std::fs::write(data.path().join("functions/my.func.mjs"), ENV_ECHO).unwrap();
    let dir = data.path().display().to_string();
    let files = [("LOWCODE_FAAS_STORAGE", "files")];
    let (worker_url, worker) = faas_tests::spawn_worker(data.path(), &files).await;
    let app = spawn_app_on(
        tempfile::tempdir().unwrap(),
        &[
            ("LOWCODE_FAAS_STORAGE", "files"),
            ("LOWCODE_FAAS_DATA_DIR", &dir),
            ("LOWCODE_FAAS_WORKER_URL", &worker_url),
        ],
    )
    .await;
    let res = invoke(&app, "/functions/my.func/invoke", json!({"env": {"A": "via worker"}})).await;
    assert_eq!(
        (res["function_id"].as_str(), &res["output"]["data"]["A"]),
        (Some("my.func"), &json!("via worker")),
        "{res}"
    );

    let client = reqwest::Client::new();
    for (name, status) in [("my.func", 200), ("a..b", 400), ("../functions/my.func", 400)] {
        let r = client
            .post(format!("{worker_url}/v1/run"))
            .json(&json!({"function_name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}");
    }
    app.stop().await;
    worker.shutdown().await;
}
