//! Databases written by the earlier implementation and by the Go version,
//! adopted idempotently.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use sqlx::{Connection, Executor, PgConnection};

use super::*;
use crate::db_s3::objects::s3_client;

#[tokio::test]
async fn adopts_a_database_written_by_the_earlier_implementation() {
    let db = TestDb::new("adopt").await;
    // The three tables exactly as docs/api.md lists them, holding a
    // function in `team/api` without rows for the root or `team`.
    let mut conn = PgConnection::connect(&db.config.postgres_dsn).await.unwrap();
    let prefix = &db.config.s3_prefix;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE collection_paths (path TEXT PRIMARY KEY, env_json JSONB NOT NULL, \
                 created_at TIMESTAMPTZ NOT NULL DEFAULT now()); \
             CREATE TABLE functions (collection_path TEXT NOT NULL, name TEXT NOT NULL, language TEXT NOT NULL, \
                 env_json JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
                 PRIMARY KEY (collection_path, name)); \
             CREATE TABLE function_versions (id BIGSERIAL PRIMARY KEY, collection_path TEXT NOT NULL, \
                 function_name TEXT NOT NULL, version BIGINT NOT NULL, s3_key TEXT NOT NULL, \
                 created_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
                 UNIQUE (collection_path, function_name, version)); \
             INSERT INTO collection_paths (path, env_json) VALUES ('team/api', '{{\"T\": \"1\"}}'); \
             INSERT INTO functions VALUES ('team/api', 'hello', 'javascript', '{{\"A\": \"1\"}}', now()); \
             INSERT INTO function_versions (collection_path, function_name, version, s3_key) VALUES \
                 ('team/api', 'hello', 1, '{prefix}functions/team/api/hello/v1.mjs'), \
                 ('team/api', 'hello', 2, '{prefix}functions/team/api/hello/v2.mjs');"
    )))
    .await
    .unwrap();
    conn.close().await.unwrap();
    let s3 = s3_client(&db.config).unwrap();
    for n in [1, 2] {
        let path = ObjectPath::parse(format!("{prefix}functions/team/api/hello/v{n}.mjs")).unwrap();
        s3.put(&path, PutPayload::from(format!("// v{n}"))).await.unwrap();
    }

    let store = db.store().await;
    let team = cp("team/api");
    let paths: Vec<String> = store
        .list_collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(paths, ["team", "team/api"], "missing ancestors were added");
    assert_eq!(store.collection_env(&team).await.unwrap(), env(&[("T", "1")]));
    let old = store.get_function(&team, &name("hello"), Some(v(1))).await.unwrap();
    assert_eq!(
        (old.source_code.as_str(), old.env.clone()),
        ("// v1", env(&[("A", "1")])),
        "old versions load, with the function's env"
    );
    let err = store.delete_collection(&cp("team")).await.unwrap_err();
    assert_eq!(err.code(), "COLLECTION_NOT_EMPTY", "{err:?}");
    let saved = store
        .save_function(&new_version(&team, "hello", "// v3", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(saved.version, v(3), "numbering goes on from the adopted versions");
    store.delete_function(&team, &name("hello")).await.unwrap();
    db.drop_database().await;
}

/// The Go version's DDL (faas-adapters/testdata/go_v1_schema.sql).
const GO_V1_SCHEMA: &str = include_str!("../../../testdata/go_v1_schema.sql");

/// The data type of a column, as PostgreSQL reports it.
async fn column_type(store: &DbS3SourceStore, table: &str, column: &str) -> String {
    sqlx::query_scalar(
        "SELECT data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
    )
    .bind(table)
    .bind(column)
    .fetch_one(&store.inner.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn adopts_a_database_created_by_the_go_version_idempotently() {
    let mut db = TestDb::new("go").await;
    // The Go version has no key prefix: its keys start at `functions/`. The
    // collection and root name carry the database name, so parallel runs on
    // the shared bucket never meet.
    db.config.s3_prefix = String::new();
    let team = db.name.clone();
    let api = format!("{team}/api");
    let root_name = format!("root.{team}");
    let mut conn = PgConnection::connect(&db.config.postgres_dsn).await.unwrap();
    conn.execute(GO_V1_SCHEMA).await.unwrap();
    // Rows as the Go version writes them: one row per collection and prefix,
    // env as JSON text (SQL NULL or `null` when empty), INTEGER versions.
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO collection_paths VALUES \
             ('{team}', '{{\"TEAM\":\"t\",\"SHARED\":\"team\",\"LOWCODE_FAAS_T\":\"x\"}}', now()), \
             ('{api}', 'null', now()); \
         INSERT INTO functions VALUES \
             ('{api}', 'hello', 'javascript', '{{\"FN\":\"f\",\"SHARED\":\"fn\",\"ÄPFEL\":\"x\"}}', now()), \
             ('{api}', 'my.func', 'javascript', NULL, now()), \
             ('', '{root_name}', 'javascript', 'null', now()); \
         INSERT INTO function_versions (collection_path, function_name, version, s3_key, created_at) VALUES \
             ('{api}', 'hello', 1, 'functions/{api}/hello/v1.mjs', now()), \
             ('{api}', 'hello', 2, 'functions/{api}/hello/v2.mjs', now()), \
             ('{api}', 'my.func', 1, 'functions/{api}/my.func/v1.mjs', now()), \
             ('', '{root_name}', 1, 'functions/{root_name}/v1.mjs', now());"
    )))
    .await
    .unwrap();
    conn.close().await.unwrap();
    let s3 = s3_client(&db.config).unwrap();
    for key in [
        format!("functions/{api}/hello/v1.mjs"),
        format!("functions/{api}/hello/v2.mjs"),
        format!("functions/{api}/my.func/v1.mjs"),
        format!("functions/{root_name}/v1.mjs"),
    ] {
        s3.put(&ObjectPath::parse(&key).unwrap(), PutPayload::from(format!("// {key}")))
            .await
            .unwrap();
    }

    let store = db.store().await;
    assert_eq!(column_type(&store, "function_versions", "version").await, "bigint");
    assert_eq!(column_type(&store, "functions", "env_json").await, "jsonb");
    assert_eq!(column_type(&store, "collection_paths", "env_json").await, "jsonb");
    // Started again: nothing left to convert, nothing changes.
    drop(store);
    let store = db.store().await;

    let (team_cp, api_cp) = (cp(&team), cp(&api));
    let listed = store.list_collections().await.unwrap();
    let paths: Vec<(String, Vec<String>)> = listed
        .into_iter()
        .map(|c| (c.path.to_string(), c.ignored_env_keys))
        .collect();
    assert_eq!(
        paths,
        [
            (team.clone(), vec!["LOWCODE_FAAS_T".to_owned()]),
            (api.clone(), Vec::new())
        ],
        "the refused Go key of a collection env is reported"
    );
    assert_eq!(
        store.collection_env(&CollectionPath::root()).await.unwrap(),
        EnvMap::new()
    );
    let team_env = store.collection_env(&team_cp).await.unwrap();
    assert_eq!(team_env.as_map(), env(&[("TEAM", "t"), ("SHARED", "team")]).as_map());
    assert_eq!(team_env.ignored_keys(), ["LOWCODE_FAAS_T"]);
    assert_eq!(
        store.collection_env(&api_cp).await.unwrap(),
        EnvMap::new(),
        "`null` is empty"
    );

    let listed = store.list_functions(&api_cp).await.unwrap();
    let rows: Vec<(String, u64)> = listed.iter().map(|f| (f.name.to_string(), f.version.get())).collect();
    assert_eq!(rows, [("hello".to_owned(), 2), ("my.func".to_owned(), 1)]);
    let root_fn = FunctionName::parse_stored(&root_name).unwrap();
    let root_list = store.list_functions(&CollectionPath::root()).await.unwrap();
    assert_eq!(names_of(&root_list), std::slice::from_ref(&root_name));

    let current = store.get_function(&api_cp, &name("hello"), None).await.unwrap();
    assert_eq!(current.source_code, format!("// functions/{api}/hello/v2.mjs"));
    assert_eq!(current.env.as_map(), env(&[("FN", "f"), ("SHARED", "fn")]).as_map());
    assert_eq!(
        current.env.ignored_keys(),
        ["ÄPFEL"],
        "the Go key today's rules refuse is reported"
    );
    let pinned = store.get_function(&api_cp, &name("hello"), Some(v(1))).await.unwrap();
    assert_eq!(
        (pinned.source_code.clone(), pinned.env.get("FN")),
        (format!("// functions/{api}/hello/v1.mjs"), Some("f")),
        "a pinned Go version loads with the function's env"
    );
    let dotted = FunctionName::parse_stored("my.func").unwrap();
    let got = store.get_function(&api_cp, &dotted, None).await.unwrap();
    assert!(got.env.is_empty(), "SQL NULL is the empty env");
    let got = store
        .get_function(&CollectionPath::root(), &root_fn, None)
        .await
        .unwrap();
    assert_eq!(got.source_code, format!("// functions/{root_name}/v1.mjs"));

    // The next version goes on from Go's numbering, at Go's key layout.
    let saved = store
        .save_function(&new_version(&api_cp, "hello", "// v3", &env(&[("FN", "g")])))
        .await
        .unwrap();
    assert_eq!(saved.version, v(3));
    let key: String = sqlx::query_scalar(
        "SELECT s3_key FROM function_versions WHERE collection_path = $1 AND function_name = 'hello' AND version = 3",
    )
    .bind(&api)
    .fetch_one(&store.inner.pool)
    .await
    .unwrap();
    assert_eq!(key, format!("functions/{api}/hello/v3.mjs"));
    let mut next = new_version(&api_cp, "hello", "// my.func v2", &EnvMap::new());
    next.name = dotted.clone();
    assert_eq!(store.save_function(&next).await.unwrap().version, v(2));

    let err = store.delete_collection(&team_cp).await.unwrap_err();
    assert_eq!(err.code(), "COLLECTION_NOT_EMPTY", "{err:?}");
    for (collection, fname) in [
        (&api_cp, name("hello")),
        (&api_cp, dotted),
        (&CollectionPath::root(), root_fn),
    ] {
        store.delete_function(collection, &fname).await.unwrap();
    }
    store.delete_collection(&api_cp).await.unwrap();
    store.delete_collection(&team_cp).await.unwrap();
    db.drop_database().await;
}

fn names_of(functions: &[FunctionSummary]) -> Vec<String> {
    functions.iter().map(|f| f.name.to_string()).collect()
}

#[tokio::test]
async fn a_go_env_that_is_not_json_stops_start_up_before_its_conversion() {
    let db = TestDb::new("gobad").await;
    let mut conn = PgConnection::connect(&db.config.postgres_dsn).await.unwrap();
    conn.execute(GO_V1_SCHEMA).await.unwrap();
    conn.execute(
        "INSERT INTO collection_paths VALUES ('broken', 'A=1', now()); \
         INSERT INTO functions VALUES ('broken', 'f', 'javascript', NULL, now()); \
         INSERT INTO function_versions (collection_path, function_name, version, s3_key, created_at) \
             VALUES ('broken', 'f', 1, 'functions/broken/f/v1.mjs', now());",
    )
    .await
    .unwrap();
    let err = DbS3SourceStore::connect(db.config.clone()).await.unwrap_err();
    let report = faas_ports::report::Report(&err).to_string();
    assert!(report.contains("migration"), "{report}");
    let version_type: String = sqlx::query_scalar(
        "SELECT data_type::text FROM information_schema.columns \
         WHERE table_name = 'function_versions' AND column_name = 'version'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(version_type, "integer", "the failed migration rolled back");
    let env_text: String = sqlx::query_scalar("SELECT env_json FROM collection_paths WHERE path = 'broken'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(env_text, "A=1");
    conn.close().await.unwrap();
    db.drop_database().await;
}
