//! Collections: saves racing a delete, refused deletes, the root collection.

use super::*;

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

#[tokio::test]
async fn root_collection_is_created_lazily_and_never_deleted() {
    let (_dir, store) = store();
    assert!(!store.data_dir().join("collections").exists());
    assert!(store.collection_exists(&CollectionPath::root()).await.unwrap());
    let err = store.delete_collection(&CollectionPath::root()).await.unwrap_err();
    assert_eq!(err.code(), "INVALID_COLLECTION_PATH");
}
