//! Atomic writes: no temp files left, no version lost or torn between two
//! stores on one directory.

use std::collections::BTreeMap;

use faas_ports::Version;

use super::*;

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
