//! Tests of the `files` store: the Go layouts, atomicity, locks and bounds.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};

use faas_ports::{Component, Language, Version};

use super::locks::Call;
use super::*;

fn cp(raw: &str) -> CollectionPath {
    CollectionPath::parse(raw).unwrap()
}

fn name(raw: &str) -> FunctionName {
    FunctionName::parse(raw).unwrap()
}

fn new_version(collection: &str, fname: &str, source: &str, env: &[(&str, &str)]) -> NewVersion {
    let map: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    NewVersion {
        collection_path: cp(collection),
        name: name(fname),
        language: Language::Javascript,
        source_code: source.to_owned(),
        env: EnvMap::parse(map).unwrap(),
    }
}

fn store() -> (tempfile::TempDir, FsSourceStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSourceStore::new(dir.path().join("data")).unwrap();
    (dir, store)
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Every file below `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_source_store_contract() {
    let (_dir, store) = store();
    crate::testkit::source_store_contract(&store).await;
}

#[tokio::test]
async fn names_the_go_version_stored_are_listed_read_updated_and_deleted() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    let stored = |raw: &str| FunctionName::parse_stored(raw).unwrap();
    // A Go data/ tree: a dotted name in the legacy directory and in a collection.
    write(&data.join("functions/my.func.mjs"), "legacy root");
    write(
        &data.join("functions/my.func.env.json"),
        r#"{"A":"1","LOWCODE_FAAS_X":"2"}"#,
    );
    write(&data.join("collections/shop/functions/cart.v2.mjs"), "in shop");
    write(
        &data.join("collections/shop/functions/cart.v2.meta.json"),
        r#"{"version":3}"#,
    );
    write(&data.join("collections/shop/functions/Grüße Welt.mjs"), "unicode");
    write(
        &data.join("collections/shop/collection.env.json"),
        r#"{"SHOP":"1","PATH":"/x"}"#,
    );

    let root = CollectionPath::root();
    let listed = store.list_functions(&root).await.unwrap();
    assert_eq!(
        listed.iter().map(|f| f.name.to_string()).collect::<Vec<_>>(),
        ["my.func"]
    );
    let shop = cp("shop");
    let collections = store.list_collections().await.unwrap();
    assert_eq!(
        collections[0].ignored_env_keys,
        ["PATH"],
        "the collection's refused key is reported"
    );
    assert_eq!(store.collection_env(&shop).await.unwrap().get("SHOP"), Some("1"));
    let listed = store.list_functions(&shop).await.unwrap();
    assert_eq!(
        listed.iter().map(|f| f.name.to_string()).collect::<Vec<_>>(),
        ["Grüße Welt", "cart.v2"]
    );

    let d = store.get_function(&root, &stored("my.func"), None).await.unwrap();
    assert_eq!((d.source_code.as_str(), d.version.get()), ("legacy root", 1));
    assert_eq!(d.env.get("A"), Some("1"));
    assert_eq!(d.env.ignored_keys(), ["LOWCODE_FAAS_X"], "the dropped key is reported");
    let d = store.get_function(&shop, &stored("cart.v2"), None).await.unwrap();
    assert_eq!((d.source_code.as_str(), d.version.get()), ("in shop", 3));

    // Updated: the next version in the new layout, under the same name.
    let mut next = new_version("shop", "cart", "v4", &[]);
    next.name = stored("cart.v2");
    assert_eq!(store.save_function(&next).await.unwrap().version.get(), 4);
    let mut next = new_version("", "x", "root v2", &[]);
    next.name = stored("my.func");
    assert_eq!(store.save_function(&next).await.unwrap().version.get(), 2);
    assert!(data.join("collections/__root__/functions/my.func.mjs").is_file());
    let d = store.get_function(&root, &stored("my.func"), None).await.unwrap();
    assert_eq!(d.source_code, "root v2");

    // Deleted, in both layouts.
    store.delete_function(&root, &stored("my.func")).await.unwrap();
    store.delete_function(&shop, &stored("cart.v2")).await.unwrap();
    store.delete_function(&shop, &stored("Grüße Welt")).await.unwrap();
    assert!(store.list_functions(&root).await.unwrap().is_empty());
    assert!(store.list_functions(&shop).await.unwrap().is_empty());
    assert!(!data.join("functions/my.func.mjs").exists());
    let err = store.get_function(&root, &stored("my.func"), None).await.unwrap_err();
    assert_eq!(err.code(), "FUNCTION_NOT_FOUND");
}

#[tokio::test]
async fn go_legacy_tree_is_listed_and_loaded_as_root_version_1() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    write(
        &data.join("functions/hello.mjs"),
        "export const handler = async () => ({ ok: true });",
    );
    write(&data.join("functions/hello.env.json"), r#"{"GREETING":"hi"}"#);
    // Unrelated files and names no version could store are ignored.
    write(&data.join("functions/notes.txt"), "x");
    write(&data.join("functions/bad..name.mjs"), "x");
    write(&data.join("functions/ lead.mjs"), "x");
    write(&data.join("functions/hello.mjs.bak"), "x");
    fs::create_dir_all(data.join("functions/sub.mjs")).unwrap();

    let listed = store.list_functions(&CollectionPath::root()).await.unwrap();
    let rows: Vec<(String, u64)> = listed.iter().map(|f| (f.name.to_string(), f.version.get())).collect();
    assert_eq!(rows, [("hello".to_owned(), 1)]);

    let d = store
        .get_function(&CollectionPath::root(), &name("hello"), None)
        .await
        .unwrap();
    assert_eq!(d.version.get(), 1);
    assert_eq!(d.source_code, "export const handler = async () => ({ ok: true });");
    assert_eq!(d.env.get("GREETING"), Some("hi"));
    let pinned = store
        .get_function(&CollectionPath::root(), &name("hello"), Some(Version::FIRST))
        .await;
    assert_eq!(pinned.unwrap().version, Version::FIRST);
    assert_eq!(
        store
            .current_revision(&CollectionPath::root(), &name("hello"))
            .await
            .unwrap()
            .version
            .get(),
        1
    );
    let versions = store
        .list_versions(&CollectionPath::root(), &name("hello"))
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);

    // Saving writes the new layout as current + 1; the new layout wins from then on.
    let saved = store.save_function(&new_version("", "hello", "v2", &[])).await.unwrap();
    assert_eq!(saved.version.get(), 2);
    let d = store
        .get_function(&CollectionPath::root(), &name("hello"), None)
        .await
        .unwrap();
    assert_eq!((d.version.get(), d.source_code.as_str()), (2, "v2"));
    assert!(d.env.is_empty(), "the legacy env does not leak into the new layout");
    assert!(data.join("collections/__root__/functions/hello.mjs").is_file());
    assert_eq!(
        fs::read_to_string(data.join("collections/__root__/functions/hello.meta.json")).unwrap(),
        r#"{"version":2}"#
    );
    let listed = store.list_functions(&CollectionPath::root()).await.unwrap();
    assert_eq!(listed.len(), 1, "a function in both layouts is listed once");
    assert_eq!(listed[0].version.get(), 2);

    // Deleting a root function removes both layouts.
    store
        .delete_function(&CollectionPath::root(), &name("hello"))
        .await
        .unwrap();
    assert!(!data.join("functions/hello.mjs").exists());
    assert!(!data.join("functions/hello.env.json").exists());
    assert!(!data.join("collections/__root__/functions/hello.mjs").exists());
    let err = store
        .get_function(&CollectionPath::root(), &name("hello"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::FunctionNotFound(_)), "{err:?}");
}

#[tokio::test]
async fn go_collection_tree_works_unchanged() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    // As the Go implementation wrote it: functions/ in every collection, no meta.
    fs::create_dir_all(data.join("collections/__root__/functions")).unwrap();
    write(&data.join("collections/team/functions/greet.mjs"), "greet");
    write(&data.join("collections/team/api/functions/list.mjs"), "list");
    write(
        &data.join("collections/team/api/functions/list.meta.json"),
        r#"{"version":7}"#,
    );
    write(&data.join("collections/team/collection.env.json"), r#"{"TEAM":"t"}"#);
    // Unrelated entries.
    write(&data.join("collections/team/README.md"), "x");
    write(&data.join("collections/team/functions/readme.md"), "x");
    fs::create_dir_all(data.join("collections/Upper")).unwrap();
    fs::create_dir_all(data.join("collections/.hidden")).unwrap();
    // A segment today's grammar reserves but the Go version stored.
    fs::create_dir_all(data.join("collections/team/env")).unwrap();

    let paths: Vec<String> = store
        .list_collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| String::from(c.path))
        .collect();
    assert_eq!(paths, ["team", "team/api", "team/env"]);
    assert_eq!(store.collection_env(&cp("team")).await.unwrap().get("TEAM"), Some("t"));
    let listed = store.list_functions(&cp("team")).await.unwrap();
    assert_eq!(listed.iter().map(|f| f.name.to_string()).collect::<Vec<_>>(), ["greet"]);
    let list = store.get_function(&cp("team/api"), &name("list"), None).await.unwrap();
    assert_eq!((list.version.get(), list.source_code.as_str()), (7, "list"));
    let saved = store
        .save_function(&new_version("team/api", "list", "list2", &[]))
        .await
        .unwrap();
    assert_eq!(saved.version.get(), 8);
    assert!(
        !store.collection_exists(&cp("upper")).await.unwrap(),
        "names are case-sensitive on disk"
    );
}

#[tokio::test]
async fn new_layout_wins_over_legacy() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    write(&data.join("functions/dup.mjs"), "legacy");
    write(&data.join("functions/dup.env.json"), r#"{"FROM":"legacy"}"#);
    write(&data.join("collections/__root__/functions/dup.mjs"), "new");
    write(
        &data.join("collections/__root__/functions/dup.meta.json"),
        r#"{"version":3}"#,
    );

    let listed = store.list_functions(&CollectionPath::root()).await.unwrap();
    let rows: Vec<(String, u64)> = listed.iter().map(|f| (f.name.to_string(), f.version.get())).collect();
    assert_eq!(rows, [("dup".to_owned(), 3)]);
    let d = store
        .get_function(&CollectionPath::root(), &name("dup"), None)
        .await
        .unwrap();
    assert_eq!((d.version.get(), d.source_code.as_str()), (3, "new"));
    assert!(d.env.is_empty(), "the env comes from the layout that wins");
}

#[tokio::test]
async fn writes_leave_no_temp_files() {
    let (_dir, store) = store();
    store
        .create_collection(
            &cp("a/b"),
            &EnvMap::parse(BTreeMap::from([("K".into(), "v".into())])).unwrap(),
        )
        .await
        .unwrap();
    store
        .set_collection_env(
            &CollectionPath::root(),
            &EnvMap::parse(BTreeMap::from([("R".into(), "1".into())])).unwrap(),
        )
        .await
        .unwrap();
    for i in 0..3 {
        store
            .save_function(&new_version("a/b", "f", &format!("v{i}"), &[("E", "1")]))
            .await
            .unwrap();
        store
            .save_function(&new_version("", "g", &format!("v{i}"), &[]))
            .await
            .unwrap();
    }
    store.health().await.unwrap();
    assert_eq!(
        tree(store.data_dir()),
        [
            ".locks/collections/a.lock",
            ".locks/collections/a/b.lock",
            "collections/__root__/collection.env.json",
            "collections/__root__/functions/g.lock",
            "collections/__root__/functions/g.meta.json",
            "collections/__root__/functions/g.mjs",
            "collections/a/b/collection.env.json",
            "collections/a/b/functions/f.env.json",
            "collections/a/b/functions/f.lock",
            "collections/a/b/functions/f.meta.json",
            "collections/a/b/functions/f.mjs",
        ]
    );
    assert!(
        store.data_dir().join("collections/a/functions").is_dir(),
        "ancestors get their functions/ as in Go"
    );
    let f = store.get_function(&cp("a/b"), &name("f"), None).await.unwrap();
    assert_eq!(
        (f.version.get(), f.source_code.as_str(), f.env.get("E")),
        (3, "v2", Some("1"))
    );
}

#[tokio::test]
async fn other_versions_are_not_available() {
    let (_dir, store) = store();
    store.save_function(&new_version("", "f", "one", &[])).await.unwrap();
    store.save_function(&new_version("", "f", "two", &[])).await.unwrap();
    let err = store
        .get_function(&CollectionPath::root(), &name("f"), Some(Version::FIRST))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::VersionNotAvailable { ref function, version: 1, current: 2 } if function == "f"),
        "{err:?}"
    );
    assert_eq!(err.code(), "VERSION_NOT_AVAILABLE");
}

#[tokio::test]
async fn env_files_with_invalid_entries_are_loaded_leniently() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    write(&data.join("collections/__root__/functions/p.mjs"), "p");
    write(
        &data.join("collections/__root__/functions/p.env.json"),
        r#"{"PORT":"3000","OK":"yes","NUM":1}"#,
    );
    write(
        &data.join("collections/__root__/collection.env.json"),
        r#"{"LOWCODE_FAAS_X":"1","ROOT":"r"}"#,
    );
    let d = store
        .get_function(&CollectionPath::root(), &name("p"), None)
        .await
        .unwrap();
    assert_eq!(d.env.iter().collect::<Vec<_>>(), [("OK", "yes")]);
    let root_env = store.collection_env(&CollectionPath::root()).await.unwrap();
    assert_eq!(root_env.iter().collect::<Vec<_>>(), [("ROOT", "r")]);
}

#[tokio::test]
async fn corrupt_json_is_internal_with_the_path() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    write(&data.join("collections/__root__/functions/c.mjs"), "c");
    write(&data.join("collections/__root__/functions/c.meta.json"), "{\"vers");
    let err = store
        .get_function(&CollectionPath::root(), &name("c"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INTERNAL");
    assert!(err.to_string().contains("c.meta.json"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_dir_never_lose_a_version() {
    let (_dir, first) = store();
    let second = FsSourceStore::new(first.data_dir()).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        for store in [first.clone(), second.clone()] {
            tasks.spawn(async move {
                store
                    .save_function(&new_version("", "shared", &format!("v{i}"), &[]))
                    .await
            });
        }
    }
    let mut versions = Vec::new();
    while let Some(result) = tasks.join_next().await {
        versions.push(result.unwrap().unwrap().version.get());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=20).collect::<Vec<_>>());
    assert_eq!(
        second
            .current_revision(&CollectionPath::root(), &name("shared"))
            .await
            .unwrap()
            .version
            .get(),
        20
    );
    assert!(
        first.inner.save_locks.lock().unwrap().is_empty(),
        "in-process locks are pruned"
    );
}

/// Takes a function's lock file as another process would.
fn hold_lock(path: &Path) -> File {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    fs4::FileExt::lock(&file).unwrap();
    file
}

/// The call answers (a hang guard, not a timing assertion) with the
/// storage timeout's error.
async fn assert_timed_out<T: std::fmt::Debug>(call: impl std::future::Future<Output = Result<T, PortError>>) {
    let result = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("a call blocked by a held lock still answers");
    let err = result.unwrap_err();
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");
    assert!(err.to_string().contains("within 200 ms"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_function_lock_bounds_saves_and_reads_and_never_commits_later() {
    let (_dir, store) = store();
    let store = store.with_timeout(Duration::from_millis(200));
    let root = CollectionPath::root();
    store.save_function(&new_version("", "f", "one", &[])).await.unwrap();
    let other = hold_lock(&store.data_dir().join("collections/__root__/functions/f.lock"));

    assert_timed_out(store.save_function(&new_version("", "f", "two", &[("E", "1")]))).await;
    assert_timed_out(store.get_function(&root, &name("f"), None)).await;
    assert_timed_out(store.delete_function(&root, &name("f"))).await;

    // The holder lets go; the abandoned work must not publish anything:
    // the function is still v1, and the next save is v2 (an abandoned save
    // published late would make it v3).
    drop(other);
    let d = store.get_function(&root, &name("f"), None).await.unwrap();
    assert_eq!((d.version.get(), d.source_code.as_str()), (1, "one"));
    assert!(d.env.is_empty());
    let files = tree(store.data_dir());
    assert!(files.iter().all(|f| !f.ends_with(".tmp")), "{files:?}");
    let saved = store.save_function(&new_version("", "f", "two", &[])).await.unwrap();
    assert_eq!(saved.version.get(), 2, "the store works again");
}

#[tokio::test]
async fn a_zero_bound_fails_every_call_without_writing() {
    let (_dir, store) = store();
    let store = store.with_timeout(Duration::ZERO);
    let err = store
        .save_function(&new_version("", "f", "one", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");
    let err = store.list_collections().await.unwrap_err();
    assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");
    // An abandoned call never passes its commit point (unit-tested on
    // `Call` below), so nothing can appear later either.
    assert!(!store.data_dir().join("collections").exists(), "nothing was written");
}

#[test]
fn an_abandoned_call_never_commits_and_a_publishing_one_says_so() {
    let call = Call::new(Duration::from_secs(60));
    call.check().unwrap();
    assert_eq!(call.abandon().code(), "STORAGE_UNAVAILABLE");
    assert!(call.check().is_err());
    assert!(call.commit_point().is_err(), "abandoned work never publishes");

    let call = Call::new(Duration::from_secs(60));
    call.commit_point().unwrap();
    call.commit_point().unwrap();
    let err = call.abandon();
    assert!(err.to_string().contains("may still be applied"), "{err}");

    assert!(Call::new(Duration::ZERO).commit_point().is_err(), "past the deadline");
    // A bound too large for the clock does not panic.
    Call::new(Duration::MAX).commit_point().unwrap();
}

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    EnvMap::parse(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_racing_a_collection_delete_are_never_lost() {
    let (_dir, first) = store();
    // A second store on the same directory stands for another process.
    let second = FsSourceStore::new(first.data_dir()).unwrap();
    let team_env = env(&[("TEAM", "t")]);
    let (mut deleted, mut refused) = (0, 0);
    for round in 0..24_u64 {
        let raw = format!("race/r{round}");
        let path = cp(&raw);
        first.create_collection(&path, &team_env).await.unwrap();
        // The delete is spawned at a different point of the burst each round.
        let mut saves = tokio::task::JoinSet::new();
        let mut deletion = None;
        for i in 0..8_u64 {
            if i == round % 8 {
                let (store, path) = (
                    if round % 2 == 0 { second.clone() } else { first.clone() },
                    path.clone(),
                );
                deletion = Some(tokio::spawn(async move { store.delete_collection(&path).await }));
            }
            let store = if i % 2 == 0 { first.clone() } else { second.clone() };
            let raw = raw.clone();
            saves.spawn(async move {
                let new = new_version(&raw, &format!("f{i}"), &format!("source {i}"), &[("N", "1")]);
                store.save_function(&new).await
            });
        }
        let deletion = deletion.unwrap().await.unwrap();
        let mut saved = Vec::new();
        while let Some(result) = saves.join_next().await {
            match result.unwrap() {
                Ok(d) => saved.push(d),
                Err(PortError::CollectionNotFound(p)) => assert_eq!(p, raw),
                Err(e) => panic!("unexpected save error: {e:?}"),
            }
        }
        for d in &saved {
            let loaded = first.get_function(&path, &d.name, None).await;
            let loaded =
                loaded.unwrap_or_else(|e| panic!("a save that answered Ok was lost ({e:?}); delete: {deletion:?}"));
            assert_eq!((loaded.version, &loaded.source_code), (d.version, &d.source_code));
        }
        match deletion {
            Ok(()) => {
                deleted += 1;
                assert!(saved.is_empty());
                assert!(!first.collection_exists(&path).await.unwrap());
            }
            Err(PortError::CollectionNotEmpty(_)) => {
                refused += 1;
                assert!(!saved.is_empty(), "refused, yet no save answered Ok");
                assert_eq!(
                    first.collection_env(&path).await.unwrap(),
                    team_env,
                    "the env file stays"
                );
            }
            Err(e) => panic!("unexpected delete error: {e:?}"),
        }
    }
    eprintln!("deleted first: {deleted}, refused: {refused}");
    // No tombstone or lock file is left in or shown as the collection tree.
    let race = first.data_dir().join("collections/race");
    for entry in fs::read_dir(&race).unwrap() {
        let entry = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(entry.starts_with('r') || entry == "functions", "{entry}");
    }
    let listed = first.list_collections().await.unwrap();
    assert!(
        listed.iter().all(|c| String::from(c.path.clone()).starts_with("race")),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 1 + refused, "{listed:?}");
}

#[tokio::test]
async fn a_refused_delete_leaves_the_collection_whole() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    store.create_collection(&cp("keep"), &env(&[("K", "v")])).await.unwrap();
    store.save_function(&new_version("keep", "f", "f", &[])).await.unwrap();
    let err = store.delete_collection(&cp("keep")).await.unwrap_err();
    assert!(matches!(err, PortError::CollectionNotEmpty(_)), "{err:?}");
    assert!(data.join("collections/keep/collection.env.json").is_file());
    let err = store
        .save_function(&new_version("nope", "f", "f", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::CollectionNotFound(_)), "{err:?}");
    assert!(
        !data.join(".locks/collections/nope.lock").exists(),
        "no lock file for a missing collection"
    );
    assert_eq!(store.collection_env(&cp("keep")).await.unwrap().get("K"), Some("v"));
    store.get_function(&cp("keep"), &name("f"), None).await.unwrap();

    store.create_collection(&cp("up/child"), &EnvMap::new()).await.unwrap();
    store.set_collection_env(&cp("up"), &env(&[("U", "1")])).await.unwrap();
    let err = store.delete_collection(&cp("up")).await.unwrap_err();
    assert!(matches!(err, PortError::CollectionNotEmpty(_)), "{err:?}");
    assert!(data.join("collections/up/collection.env.json").is_file());

    // Emptied, it goes entirely, leaving no tombstone.
    store.delete_collection(&cp("up/child")).await.unwrap();
    store.delete_collection(&cp("up")).await.unwrap();
    let left: Vec<String> = fs::read_dir(data.join("collections"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["keep"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_collection_lock_bounds_writes_and_deletes() {
    let (_dir, store) = store();
    let store = store.with_timeout(Duration::from_millis(200));
    store.create_collection(&cp("held"), &env(&[("K", "v")])).await.unwrap();
    let lock_path = store.data_dir().join(".locks/collections/held.lock");
    // Another process deleting `held`: writes into it wait, within the bound.
    let other = hold_lock(&lock_path);
    assert_timed_out(store.save_function(&new_version("held", "f", "f", &[]))).await;
    assert_timed_out(store.create_collection(&cp("held/child"), &EnvMap::new())).await;
    assert_timed_out(store.set_collection_env(&cp("held"), &EnvMap::new())).await;
    drop(other);

    // Another process writing into `held`: the delete waits, within the bound.
    let file = File::open(&lock_path).unwrap();
    fs4::FileExt::lock_shared(&file).unwrap();
    assert_timed_out(store.delete_collection(&cp("held"))).await;
    drop(file);
    assert_eq!(store.collection_env(&cp("held")).await.unwrap().get("K"), Some("v"));
    let listed = store.list_collections().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(store.list_functions(&cp("held")).await.unwrap().is_empty());
    store.delete_collection(&cp("held")).await.unwrap();
    assert!(!store.collection_exists(&cp("held")).await.unwrap());
}

#[tokio::test]
async fn root_collection_is_created_lazily_and_never_deleted() {
    let (_dir, store) = store();
    assert!(!store.data_dir().join("collections").exists());
    assert!(store.collection_exists(&CollectionPath::root()).await.unwrap());
    let err = store.delete_collection(&CollectionPath::root()).await.unwrap_err();
    assert_eq!(err.code(), "INVALID_COLLECTION_PATH");
}

#[test]
fn new_refuses_a_file_and_creates_a_missing_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    assert!(matches!(FsSourceStore::new(&file), Err(AdapterError::Config(_))));
    let nested = dir.path().join("a/b/data");
    FsSourceStore::new(&nested).unwrap();
    assert!(nested.is_dir());
}

#[tokio::test]
async fn health_fails_when_the_data_dir_is_gone() {
    let (dir, store) = store();
    store.health().await.unwrap();
    fs::remove_dir_all(dir.path().join("data")).unwrap();
    let err = store.health().await.unwrap_err();
    assert!(
        matches!(
            err,
            PortError::Unavailable {
                component: Component::Storage,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn stale_temp_files_of_interrupted_writes_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let functions = dir.path().join("collections/__root__/functions");
    std::fs::create_dir_all(&functions).unwrap();
    let stale = functions.join(".hello.mjs.AbC123.tmp");
    let source = functions.join("hello.mjs");
    let hidden_other = functions.join(".keep");
    for path in [&stale, &source, &hidden_other] {
        std::fs::write(path, "x").unwrap();
    }
    // A fresh temp file (a write in progress) stays at the default age.
    assert_eq!(super::sweep_stale_temp_files(dir.path(), super::STALE_TEMP_AGE), 0);
    assert!(stale.exists());
    // Old enough: removed; everything else stays.
    assert_eq!(super::sweep_stale_temp_files(dir.path(), std::time::Duration::ZERO), 1);
    assert!(!stale.exists());
    assert!(source.exists() && hidden_other.exists());
}

/// The lock files below the data directory, relative to it.
fn lock_files(data: &Path) -> Vec<String> {
    tree(data).into_iter().filter(|f| f.ends_with(".lock")).collect()
}

/// Issue 12, item 6: `<name>.lock` stayed after a delete, and collection
/// locks after their collection. Now a lock file goes with what it locks,
/// and calls that find nothing leave none.
#[tokio::test]
async fn lock_files_go_with_what_they_lock() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    store.create_collection(&cp("a"), &EnvMap::new()).await.unwrap();
    store.create_collection(&cp("a/b"), &EnvMap::new()).await.unwrap();
    store.save_function(&new_version("", "top", "t", &[])).await.unwrap();
    store
        .save_function(&new_version("a/b", "f", "f", &[("K", "v")]))
        .await
        .unwrap();
    assert_eq!(
        lock_files(&data),
        [
            ".locks/collections/a.lock",
            ".locks/collections/a/b.lock",
            "collections/__root__/functions/top.lock",
            "collections/a/b/functions/f.lock",
        ]
    );

    store
        .delete_function(&CollectionPath::root(), &name("top"))
        .await
        .unwrap();
    store.delete_function(&cp("a/b"), &name("f")).await.unwrap();
    // Deleting or reading what does not exist leaves no lock either.
    let missing = store.delete_function(&cp("a/b"), &name("never")).await.unwrap_err();
    assert_eq!(missing.code(), "FUNCTION_NOT_FOUND");
    let missing = store.get_function(&cp("a/b"), &name("never"), None).await.unwrap_err();
    assert_eq!(missing.code(), "FUNCTION_NOT_FOUND");
    assert_eq!(
        lock_files(&data),
        [".locks/collections/a.lock", ".locks/collections/a/b.lock"]
    );

    store.delete_collection(&cp("a/b")).await.unwrap();
    assert_eq!(lock_files(&data), [".locks/collections/a.lock"]);
    store.delete_collection(&cp("a")).await.unwrap();
    assert!(lock_files(&data).is_empty(), "{:?}", tree(&data));
    assert!(tree(&data.join(".locks")).is_empty());

    // Racing deletes of one collection (two processes) and saves into it
    // leave no lock file either.
    let other = FsSourceStore::new(&data).unwrap();
    for round in 0..20 {
        store.create_collection(&cp("gone"), &EnvMap::new()).await.unwrap();
        let (a, b, c) = (store.clone(), other.clone(), other.clone());
        let (x, y, z) = tokio::join!(
            tokio::spawn(async move { a.delete_collection(&cp("gone")).await }),
            tokio::spawn(async move { b.delete_collection(&cp("gone")).await }),
            tokio::spawn(async move { c.set_collection_env(&cp("gone"), &env(&[("K", "v")])).await }),
        );
        let outcomes = [x.unwrap(), y.unwrap(), z.unwrap()];
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Ok(()) | Err(PortError::CollectionNotFound(_)))),
            "round {round}: {outcomes:?}"
        );
        assert_eq!(outcomes[..2].iter().filter(|o| o.is_ok()).count(), 1, "round {round}");
        assert!(lock_files(&data).is_empty(), "round {round}: {:?}", lock_files(&data));
    }

    // A path used again gets fresh locks that work.
    store.create_collection(&cp("a"), &EnvMap::new()).await.unwrap();
    let saved = store.save_function(&new_version("a", "f", "again", &[])).await.unwrap();
    assert_eq!(saved.version, Version::FIRST);
    assert_eq!(
        lock_files(&data),
        [".locks/collections/a.lock", "collections/a/functions/f.lock"]
    );
}

/// Whether the files of `f` at rest are whole: a source with its env and
/// meta, or nothing at all (and then no lock file).
fn assert_whole_or_gone(functions: &Path, round: usize) {
    let source = fs::read_to_string(functions.join("f.mjs")).ok();
    let env = fs::read_to_string(functions.join("f.env.json")).ok();
    let meta = functions.join("f.meta.json").exists();
    let lock = functions.join("f.lock").exists();
    match source {
        Some(source) => {
            let i = source.strip_prefix("// save ").unwrap();
            assert_eq!(
                env.as_deref(),
                Some(format!("{{\"I\":\"{i}\"}}").as_str()),
                "round {round}"
            );
            assert!(meta && lock, "round {round}: meta {meta}, lock {lock}");
        }
        None => assert!(
            env.is_none() && !meta && !lock,
            "round {round}: leftovers without a source: env {env:?}, meta {meta}, lock {lock}"
        ),
    }
}

/// Saves and deletes of one function from two stores on one directory (two
/// processes: only the file locks keep them apart) while the lock file is
/// being removed and re-created: never two writers at once, so the files
/// at rest are whole or gone, and every save numbers from what it found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_racing_deletes_of_one_function_across_stores_stay_whole() {
    let (_dir, first) = store();
    let second = FsSourceStore::new(first.data_dir()).unwrap();
    first.create_collection(&cp("race"), &EnvMap::new()).await.unwrap();
    let functions = first.data_dir().join("collections/race/functions");
    let (mut saved_fresh, mut deleted) = (0, 0);
    for round in 0..60 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..6 {
            let (saver, deleter) = if (round + i) % 2 == 0 {
                (first.clone(), second.clone())
            } else {
                (second.clone(), first.clone())
            };
            tasks.spawn(async move {
                let tag = format!("{round}.{i}");
                let new = new_version("race", "f", &format!("// save {tag}"), &[("I", &tag)]);
                saver.save_function(&new).await.map(|d| (Some(d), false))
            });
            tasks.spawn(async move {
                match deleter.delete_function(&cp("race"), &name("f")).await {
                    Ok(()) => Ok((None, true)),
                    Err(PortError::FunctionNotFound(_)) => Ok((None, false)),
                    Err(e) => Err(e),
                }
            });
        }
        while let Some(result) = tasks.join_next().await {
            match result.unwrap().unwrap() {
                (Some(d), _) if d.version == Version::FIRST => saved_fresh += 1,
                (_, true) => deleted += 1,
                _ => {}
            }
        }
        assert_whole_or_gone(&functions, round);
        // A read sees a whole version: its env belongs to its source.
        if let Ok(d) = second.get_function(&cp("race"), &name("f"), None).await {
            let i = d.source_code.strip_prefix("// save ").unwrap();
            assert_eq!(d.env.iter().collect::<Vec<_>>(), [("I", i)]);
        }
    }
    // Saves after a delete start again at version 1.
    assert!(
        saved_fresh > 0 && deleted > 0,
        "no interleaving: {saved_fresh} {deleted}"
    );
    first.delete_function(&cp("race"), &name("f")).await.ok();
    assert_eq!(lock_files(first.data_dir()), [".locks/collections/race.lock"]);
}

/// Issue 12, item 8: sources, env and meta files were read whole whatever
/// their size. A hand-placed oversize file is now an `Internal` error naming
/// the file and the limit, read no further than the cap (the files below
/// are sparse: gigabytes long, nothing on disk).
#[tokio::test]
async fn oversize_files_are_refused_without_reading_them_whole() {
    let (_dir, store) = store();
    let data = store.data_dir().to_owned();
    let functions = data.join("collections/__root__/functions");
    let sparse = |path: &Path, len: u64| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        File::create(path).unwrap().set_len(len).unwrap();
    };
    let get = |fname: &'static str| {
        let store = store.clone();
        async move { store.get_function(&CollectionPath::root(), &name(fname), None).await }
    };

    write(
        &functions.join("big.mjs"),
        "export const handler = () => ({ ok: true });",
    );
    sparse(&functions.join("big.env.json"), 4 << 30);
    let err = get("big").await.unwrap_err();
    assert_eq!(err.code(), "INTERNAL");
    assert_eq!(
        err.to_string(),
        format!(
            "internal error: collections/__root__/functions/big.env.json is larger than the limit of {} bytes",
            layout::MAX_ENV_FILE_BYTES
        )
    );

    write(&functions.join("meta.mjs"), "m");
    sparse(&functions.join("meta.meta.json"), 1 << 30);
    let err = get("meta").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("meta.meta.json is larger than the limit of 4096 bytes"),
        "{err}"
    );
    assert_eq!(
        store.list_functions(&CollectionPath::root()).await.unwrap_err().code(),
        "INTERNAL"
    );
    fs::remove_file(functions.join("meta.meta.json")).unwrap();

    sparse(&data.join("collections/__root__/collection.env.json"), 1 << 30);
    let err = store.collection_env(&CollectionPath::root()).await.unwrap_err();
    assert!(err.to_string().contains("collection.env.json is larger than"), "{err}");
    fs::remove_file(data.join("collections/__root__/collection.env.json")).unwrap();

    // Sources: the larger of 64 MiB and the configured source limit (set
    // on a clone: it applies to every clone).
    let _configured = store.clone().with_max_source_bytes(10);
    assert_eq!(
        store
            .inner
            .max_source_file_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        MIN_SOURCE_FILE_CAP
    );
    sparse(&functions.join("huge.mjs"), 8 << 30);
    let err = get("huge").await.unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "huge.mjs is larger than the limit of {MIN_SOURCE_FILE_CAP} bytes"
        )),
        "{err}"
    );
    let configured = store.clone().with_max_source_bytes(MIN_SOURCE_FILE_CAP * 2);
    assert_eq!(
        store
            .inner
            .max_source_file_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        MIN_SOURCE_FILE_CAP * 2
    );
    configured
        .inner
        .max_source_file_bytes
        .store(40, std::sync::atomic::Ordering::Relaxed);
    write(&functions.join("edge.mjs"), &"x".repeat(40));
    assert_eq!(get("edge").await.unwrap().source_code.len(), 40);
    write(&functions.join("edge.mjs"), &"x".repeat(41));
    assert!(get("edge").await.unwrap_err().to_string().contains("limit of 40 bytes"));
    // A source that is not UTF-8 is Internal too, naming the file.
    fs::write(functions.join("edge.mjs"), [0xff, 0xfe]).unwrap();
    let err = get("edge").await.unwrap_err();
    assert_eq!(err.code(), "INTERNAL");
    assert!(err.to_string().contains("edge.mjs"), "{err}");
}
