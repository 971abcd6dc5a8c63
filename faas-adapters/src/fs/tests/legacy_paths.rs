//! Collection paths only the Go version's grammar accepts, in the files
//! layout (docs/api.md §2.2).

use faas_ports::{CollectionPath, EnvMap, FunctionName, Language, NewVersion, PortError, SourceStore};

use crate::fs::FsSourceStore;

fn stored(raw: &str) -> CollectionPath {
    CollectionPath::parse_stored(raw).unwrap()
}

fn store() -> (tempfile::TempDir, FsSourceStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSourceStore::new(dir.path().join("data")).unwrap();
    (dir, store)
}

fn version(collection: &CollectionPath, source: &str) -> NewVersion {
    NewVersion {
        collection_path: collection.clone(),
        name: FunctionName::parse("f").unwrap(),
        language: Language::Javascript,
        source_code: source.to_owned(),
        env: EnvMap::default(),
    }
}

#[tokio::test]
async fn env_and_long_segments_are_ordinary_collections() {
    let (_dir, store) = store();
    let long = format!("team/{}", "l".repeat(200));
    store
        .create_collection(&stored("team"), &EnvMap::default())
        .await
        .unwrap();
    for path in [stored("team/env"), stored(&long)] {
        store.create_collection(&path, &EnvMap::default()).await.unwrap();
        assert!(store.collection_exists(&path).await.unwrap());
        let saved = store.save_function(&version(&path, "export {}")).await.unwrap();
        assert_eq!(saved.collection_path, path);
        store.delete_function(&path, &saved.name).await.unwrap();
        store.delete_collection(&path).await.unwrap();
    }
}

#[tokio::test]
async fn paths_the_layout_cannot_hold_apart_exist_nowhere() {
    let (dir, store) = store();
    store.create_collection(&stored("x"), &EnvMap::default()).await.unwrap();
    // `x/functions` would be x's functions folder, `__root__` the root's.
    store
        .save_function(&version(&CollectionPath::root(), "root"))
        .await
        .unwrap();
    store.save_function(&version(&stored("x"), "x")).await.unwrap();
    let long = "l".repeat(251);
    let cases = [
        ("x/functions", "`functions/` folder of its parent"),
        ("__root__", "root's `__root__/` folder"),
        ("__root__/y", "root's `__root__/` folder"),
        (
            long.as_str(),
            "segment of 251 bytes leaves no room for its `.lock` file (at most 250 bytes)",
        ),
    ];
    for (path, why) in cases {
        let path = stored(path);
        assert!(!store.collection_exists(&path).await.unwrap(), "{path}");
        let err = store.create_collection(&path, &EnvMap::default()).await.unwrap_err();
        assert!(matches!(err, PortError::InvalidCollectionPath(_)), "{path}: {err:?}");
        // The message names the rule the path breaks.
        assert!(err.to_string().contains(why), "{path}: {err}");
        let err = store
            .get_function(&path, &FunctionName::parse("f").unwrap(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::CollectionNotFound(_)), "{path}: {err:?}");
        let err = store.save_function(&version(&path, "no")).await.unwrap_err();
        assert!(matches!(err, PortError::CollectionNotFound(_)), "{path}: {err:?}");
        assert!(matches!(
            store.list_functions(&path).await,
            Err(PortError::CollectionNotFound(_))
        ));
    }
    // Nothing was written into the folders those paths would alias.
    assert!(!dir.path().join("data/collections/x/functions/functions").exists());
    let listed: Vec<String> = store
        .list_collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.path.into())
        .collect();
    assert_eq!(listed, ["x"]);
}
