//! Versions: distinct numbers under concurrent saves, old versions
//! pinnable with their own env, no version without its object, orphaned
//! objects replaced and committed ones never.

use std::collections::BTreeSet;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_saving_concurrently_get_distinct_versions() {
    const PER_STORE: u64 = 20;
    let db = TestDb::new("concurrent").await;
    // Separate pools, as two processes would have.
    let stores = [db.store().await, db.store().await];
    let root = CollectionPath::root();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..2 * PER_STORE {
        let store = stores[(i % 2) as usize].clone();
        let new = new_version(
            &root,
            "counter",
            &format!("export const handler = async () => ({{ ok: true, data: {i} }});\n"),
            &env(&[("SAVE", &i.to_string())]),
        );
        tasks.spawn(async move { store.save_function(&new).await });
    }
    let mut saved = Vec::new();
    while let Some(result) = tasks.join_next().await {
        saved.push(result.unwrap().expect("every concurrent save succeeds"));
    }
    let mut versions: Vec<u64> = saved.iter().map(|d| d.version.get()).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=2 * PER_STORE).collect::<Vec<_>>(),
        "two processes saving one function get versions 1..=40 without gaps or duplicates"
    );
    let sources: BTreeSet<&str> = saved.iter().map(|d| d.source_code.as_str()).collect();
    assert_eq!(sources.len(), saved.len(), "every save wrote its own source");
    for d in &saved {
        let store = &stores[(d.version.get() % 2) as usize];
        let got = store
            .get_function(&root, &name("counter"), Some(d.version))
            .await
            .unwrap();
        assert_eq!(
            (got.source_code.as_str(), &got.env),
            (d.source_code.as_str(), &d.env),
            "v{} loads with the source and env its save wrote",
            d.version
        );
    }
    let listed = stores[0].list_versions(&root, &name("counter")).await.unwrap();
    let listed: Vec<u64> = listed.iter().map(|i| i.version.get()).collect();
    assert_eq!(
        listed,
        (1..=2 * PER_STORE).rev().collect::<Vec<_>>(),
        "full history, newest first"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn old_versions_stay_pinnable_with_their_own_env_at_the_spec_keys() {
    let db = TestDb::new("pin").await;
    let store = db.store().await;
    let team = cp("team/api");
    store.create_collection(&team, &EnvMap::new()).await.unwrap();
    let first = store
        .save_function(&new_version(&team, "hello", "// one", &env(&[("A", "1")])))
        .await
        .unwrap();
    store
        .save_function(&new_version(&team, "hello", "// two", &env(&[("B", "2")])))
        .await
        .unwrap();

    let old = store.get_function(&team, &name("hello"), Some(v(1))).await.unwrap();
    assert_eq!(old, first, "a pinned old version loads exactly as it was saved");
    let current = store.get_function(&team, &name("hello"), None).await.unwrap();
    assert_eq!(
        (current.version, current.source_code.as_str(), current.env.clone()),
        (v(2), "// two", env(&[("B", "2")]))
    );
    let err = store.get_function(&team, &name("hello"), Some(v(3))).await.unwrap_err();
    assert_eq!(err.code(), "VERSION_NOT_FOUND", "{err:?}");

    let keys: Vec<String> = sqlx::query_scalar("SELECT s3_key FROM function_versions ORDER BY version")
        .fetch_all(&store.inner.pool)
        .await
        .unwrap();
    let prefix = &db.config.s3_prefix;
    assert_eq!(
        keys,
        [
            format!("{prefix}functions/team/api/hello/v1.mjs"),
            format!("{prefix}functions/team/api/hello/v2.mjs")
        ],
        "sources live at {{prefix}}functions/{{collection/path}}/{{name}}/v{{N}}.mjs"
    );
    for key in &keys {
        store.inner.s3.head(&ObjectPath::parse(key).unwrap()).await.unwrap();
    }
    let root_fn = store
        .save_function(&new_version(&CollectionPath::root(), "top", "// top", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(
        store
            .inner
            .s3_key(&CollectionPath::root(), &root_fn.name, root_fn.version),
        format!("{prefix}functions/top/v1.mjs"),
        "root functions have no collection segment"
    );

    store.delete_function(&team, &name("hello")).await.unwrap();
    for key in &keys {
        let err = store.inner.s3.head(&ObjectPath::parse(key).unwrap()).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotFound { .. }),
            "delete_function removes the source objects, got {err:?}"
        );
    }
    db.drop_database().await;
}

#[tokio::test]
async fn a_failed_s3_write_leaves_no_version() {
    let db = TestDb::new("s3fail").await;
    let store = db.store().await;
    // Two real failures: the server refuses our signature (403), and no
    // server at all. (s3s-fs creates a missing bucket on the first put,
    // so a wrong bucket name does not fail there as it would on AWS.)
    let mut wrong_secret = db.config.clone();
    wrong_secret.s3_credentials = wrong_secret.s3_credentials.map(|(key, _)| (key, "wrong-secret".into()));
    let mut no_server = db.config.clone();
    no_server.s3_endpoint = Some(format!("http://127.0.0.1:{}", closed_port()));
    no_server.storage_timeout = Duration::from_secs(2);

    for (case, broken) in [("wrong secret", &wrong_secret), ("no server", &no_server)] {
        let broken = with_s3(&store, broken);
        let fname = if case == "wrong secret" { "f" } else { "g" };
        let root = CollectionPath::root();

        let err = broken
            .save_function(&new_version(&root, fname, "// lost", &EnvMap::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{case}: {err:?}");
        assert!(
            store
                .list_functions(&root)
                .await
                .unwrap()
                .iter()
                .all(|f| f.name.as_str() != fname),
            "{case}: a failed first save creates no function"
        );

        let rows_before = version_rows(&store).await;
        store
            .save_function(&new_version(&root, fname, "// one", &EnvMap::new()))
            .await
            .unwrap();
        let err = broken
            .save_function(&new_version(&root, fname, "// lost", &EnvMap::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{case}: {err:?}");
        assert_eq!(
            store.current_revision(&root, &name(fname)).await.unwrap().version,
            v(1),
            "{case}"
        );
        assert_eq!(
            version_rows(&store).await,
            rows_before + 1,
            "{case}: a failed save adds no version row"
        );
        let err = broken.health().await.unwrap_err();
        assert_eq!(
            err.code(),
            "STORAGE_UNAVAILABLE",
            "{case}: health sees S3 failing: {err:?}"
        );
        let saved = store
            .save_function(&new_version(&root, fname, "// two", &EnvMap::new()))
            .await
            .unwrap();
        assert_eq!(
            saved.version,
            v(2),
            "{case}: the failed save consumed no version number"
        );
        let got = store.get_function(&root, &name(fname), Some(v(2))).await.unwrap();
        assert_eq!(
            got.source_code, "// two",
            "{case}: nothing of the failed save is visible"
        );
    }
    db.drop_database().await;
}

#[tokio::test]
async fn an_orphaned_object_is_replaced_and_a_committed_one_never_is() {
    let db = TestDb::new("orphan").await;
    let store = db.store().await;
    let root = CollectionPath::root();
    // What a save that failed after its S3 write leaves behind.
    let key = store.inner.s3_key(&root, &name("f"), v(1));
    let path = ObjectPath::parse(&key).unwrap();
    store
        .inner
        .s3
        .put(&path, PutPayload::from_static(b"// orphan"))
        .await
        .unwrap();

    let saved = store
        .save_function(&new_version(&root, "f", "// one", &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(saved.version, v(1));
    let got = store.get_function(&root, &name("f"), None).await.unwrap();
    assert_eq!(
        got.source_code, "// one",
        "the orphan was replaced by the save's source"
    );

    // The server honours `If-None-Match: *`: a committed object is never overwritten.
    let err = store
        .inner
        .s3
        .put_opts(
            &path,
            PutPayload::from_static(b"// other"),
            PutOptions::from(PutMode::Create),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "a create over an existing object is refused, got {err:?}"
    );
    let got = store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();
    assert_eq!(got.source_code, "// one");
    db.drop_database().await;
}
