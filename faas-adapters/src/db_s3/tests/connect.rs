//! Connection settings: TLS (`sslmode`), DSNs, config errors naming the
//! variable, secrets never shown.

use super::*;

/// True when the store's own session to PostgreSQL is encrypted.
async fn session_uses_tls(store: &DbS3SourceStore) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&store.inner.pool)
        .await
        .unwrap()
}

/// The test database of `db` reached over TLS with `query` (`sslmode=…`).
fn tls_url(db: &TestDb, query: &str) -> String {
    let base = var("LOWCODE_FAAS_TEST_POSTGRES_TLS_DSN");
    let base = base.split_once('?').map_or(base.as_str(), |(b, _)| b).to_owned();
    format!("{}?{query}", with_database(&base, &db.name))
}

#[tokio::test]
async fn sslmode_require_and_verify_full_connect_over_tls() {
    let mut db = TestDb::new("tls").await;
    let ca = var("LOWCODE_FAAS_TEST_POSTGRES_TLS_CA");
    let plain = db.store().await;
    let keyword = format!(
        "host=127.0.0.1 port={} dbname={} user=faas password=faas sslmode=verify-full sslrootcert='{ca}'",
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&var("LOWCODE_FAAS_TEST_POSTGRES_TLS_DSN"))
            .unwrap()
            .get_port(),
        db.name
    );
    for dsn in [
        tls_url(&db, "sslmode=require"),
        tls_url(&db, &format!("sslmode=verify-full&sslrootcert={ca}")),
        tls_url(&db, &format!("sslmode=verify-ca&sslrootcert={ca}")).replace("127.0.0.1", "localhost"),
        keyword,
    ] {
        db.config.postgres_dsn = dsn.clone();
        let store = db.store().await;
        assert!(session_uses_tls(&store).await, "{dsn}");
        store
            .save_function(&new_version(&CollectionPath::root(), "tls", "// tls", &EnvMap::new()))
            .await
            .unwrap();
        store
            .delete_function(&CollectionPath::root(), &name("tls"))
            .await
            .unwrap();
    }
    drop(plain);
    db.drop_database().await;
}

#[tokio::test]
async fn verify_full_refuses_a_server_its_roots_do_not_trust() {
    let mut db = TestDb::new("tlsbad").await;
    db.config.storage_timeout = Duration::from_secs(2);
    // The webpki roots do not know the test CA: no connection, a clear cause.
    db.config.postgres_dsn = tls_url(&db, "sslmode=verify-full");
    let err = DbS3SourceStore::connect(db.config.clone()).await.unwrap_err();
    let report = faas_ports::report::Report(&err).to_string();
    assert!(matches!(err, AdapterError::Unavailable { .. }), "{report}");
    assert!(report.to_lowercase().contains("certificate"), "{report}");
    assert!(!report.contains("faas:faas"), "no password in the message: {report}");
    db.drop_database().await;
}

#[tokio::test]
async fn a_malformed_keyword_dsn_is_a_config_error_naming_the_variable() {
    for dsn in [
        "host=127.0.0.1 dbname",
        "host=127.0.0.1 password='faas",
        "host=127.0.0.1 sslmode=maybe",
    ] {
        let err = DbS3SourceStore::connect(DbS3Config::new(dsn, "bucket"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdapterError::Config(ref m) if m.contains("LOWCODE_FAAS_POSTGRES_DSN") && !m.contains("'faas")),
            "{dsn}: {err}"
        );
    }
}

#[tokio::test]
async fn connect_names_the_missing_setting() {
    let cases = [
        (DbS3Config::new("", "bucket"), "LOWCODE_FAAS_POSTGRES_DSN"),
        (DbS3Config::new("postgres://u:p@h/db", " "), "LOWCODE_FAAS_S3_BUCKET"),
        (
            DbS3Config {
                s3_credentials: Some(("key".into(), String::new())),
                ..DbS3Config::new("postgres://u:p@h/db", "bucket")
            },
            "LOWCODE_FAAS_S3_SECRET_KEY",
        ),
        (
            DbS3Config {
                storage_timeout: Duration::ZERO,
                ..DbS3Config::new("postgres://u:p@h/db", "bucket")
            },
            "LOWCODE_FAAS_STORAGE_TIMEOUT_MS",
        ),
        (
            DbS3Config::new("mysql://u:p@h/db", "bucket"),
            "LOWCODE_FAAS_POSTGRES_DSN",
        ),
    ];
    for (config, variable) in cases {
        let err = DbS3SourceStore::connect(config).await.unwrap_err();
        assert!(
            matches!(err, AdapterError::Config(ref m) if m.contains(variable)),
            "expected a config error naming {variable}, got {err}"
        );
    }
}

#[test]
fn debug_redacts_secrets() {
    let mut config = DbS3Config::new("postgres://u:hunter2@db/x", "bucket");
    config.s3_credentials = Some(("AKIDSECRET".into(), "s3cr3t".into()));
    let shown = format!("{config:?}");
    for secret in ["hunter2", "AKIDSECRET", "s3cr3t"] {
        assert!(!shown.contains(secret), "{secret} leaked into {shown}");
    }
}

#[test]
fn dsn_database_is_replaced() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/db", "t"),
        "postgres://u:p@h:5432/t"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "t"),
        "postgres://u:p@h/t?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u:p@h", "t"), "postgres://u:p@h/t");
}
