//! Unreachable, silent and cut services: `STORAGE_UNAVAILABLE` within the
//! bound, nothing half written, recovery.

use super::*;

#[tokio::test]
async fn a_save_that_times_out_never_commits() {
    let db = TestDb::new("timeout").await;
    let store = db.store().await;
    let root = CollectionPath::root();
    let (port, server) = silent_server().await;
    let hanging = with_s3(
        &store,
        &DbS3Config {
            s3_endpoint: Some(format!("http://127.0.0.1:{port}")),
            storage_timeout: Duration::from_millis(800),
            ..db.config.clone()
        },
    );

    let err = tokio::time::timeout(
        OUTER_BOUND,
        hanging.save_function(&new_version(&root, "f", "// late", &EnvMap::new())),
    )
    .await
    .expect("the save is bounded by its storage timeout")
    .unwrap_err();
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");

    // The abandoned transaction rolled back and released the function row:
    // a save through the healthy store goes through and gets version 1.
    let saved = store
        .save_function(&new_version(&root, "f", "// one", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(saved.version, v(1), "the timed-out save left no version behind");
    assert_eq!(version_rows(&store).await, 1);
    server.abort();
    db.drop_database().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_storage_unavailable() {
    let mut config = services_config("unreachable");
    config.postgres_dsn = format!("postgres://faas:faas@127.0.0.1:{}/faas_test", closed_port());
    config.storage_timeout = Duration::from_secs(1);

    let err = tokio::time::timeout(OUTER_BOUND, DbS3SourceStore::connect(config.clone()))
        .await
        .expect("connect gives up after its retry window")
        .unwrap_err();
    let message = faas_ports::report::report(&err);
    assert!(message.contains("PostgreSQL"), "the error names PostgreSQL: {message}");
    assert!(
        message.to_lowercase().contains("refused"),
        "the error carries the cause for the operator: {message}"
    );

    let store = unchecked_store(&config);
    check_unavailable(&store).await;
}

#[tokio::test]
async fn a_silent_postgres_is_storage_unavailable_within_the_bound() {
    let (port, server) = silent_server().await;
    let mut config = services_config("silent");
    config.postgres_dsn = format!("postgres://faas:faas@127.0.0.1:{port}/faas_test");
    config.storage_timeout = Duration::from_millis(800);
    let store = unchecked_store(&config);
    check_unavailable(&store).await;
    server.abort();
}

/// A loopback TCP forwarder to `upstream` that can be cut (every live
/// connection dropped, new ones refused) and restored: an outage of the
/// service behind it, as the store sees one.
struct Outage {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Outage {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (Arc::clone(&up), Arc::clone(&conns));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is reset
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Self {
            port,
            up,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_outage_is_storage_unavailable_then_recovers_with_nothing_half_written() {
    let db = TestDb::new("outage").await;
    let dsn = db.config.postgres_dsn.clone();
    let authority = dsn
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let outage = Outage::start(authority.clone()).await;
    let config = DbS3Config {
        postgres_dsn: dsn.replace(&authority, &format!("127.0.0.1:{}", outage.port)),
        storage_timeout: Duration::from_millis(1500),
        ..db.config.clone()
    };
    let store = DbS3SourceStore::connect(config).await.unwrap();
    let root = CollectionPath::root();
    store
        .save_function(&new_version(&root, "f", "// one", &EnvMap::new()))
        .await
        .unwrap();

    outage.cut();
    check_unavailable(&store).await;

    outage.restore();
    // The pool replaces its broken connections on the next calls; the
    // first call after the outage may still meet a dead one.
    let mut recovered = None;
    for _ in 0..5 {
        match tokio::time::timeout(OUTER_BOUND, store.get_function(&root, &name("f"), None)).await {
            Ok(Ok(d)) => {
                recovered = Some(d);
                break;
            }
            Ok(Err(e)) => assert_eq!(e.code(), "STORAGE_UNAVAILABLE", "{e:?}"),
            Err(_) => panic!("a call after the outage is still bounded"),
        }
    }
    let current = recovered.expect("the store recovers once PostgreSQL is back");
    assert_eq!(
        current.version,
        v(1),
        "the save attempted during the outage left nothing behind"
    );
    assert_eq!(current.source_code, "// one");
    store.health().await.unwrap();
    let next = store
        .save_function(&new_version(&root, "f", "// two", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(next.version, v(2));
    outage.accept.abort();
    db.drop_database().await;
}

async fn check_unavailable(store: &DbS3SourceStore) {
    let root = CollectionPath::root();
    let results = [
        tokio::time::timeout(OUTER_BOUND, store.list_collections())
            .await
            .map(|r| r.map(drop)),
        tokio::time::timeout(
            OUTER_BOUND,
            store.save_function(&new_version(&root, "f", "// x", &EnvMap::new())),
        )
        .await
        .map(|r| r.map(drop)),
        tokio::time::timeout(OUTER_BOUND, store.get_function(&root, &name("f"), None))
            .await
            .map(|r| r.map(drop)),
        tokio::time::timeout(OUTER_BOUND, store.health()).await,
    ];
    for result in results {
        let err = result
            .expect("every call is bounded by the storage timeout")
            .unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");
    }
}
