//! Function and collection locks: bounded waits, abandoned calls that
//! never commit, lock files that go with what they lock.

use std::fs::{File, OpenOptions};

use faas_ports::Version;

use super::*;
use crate::fs::locks::Call;

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
