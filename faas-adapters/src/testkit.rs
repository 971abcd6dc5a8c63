//! The [`SourceStore`] contract suite: the rules of the trait's documentation,
//! checked against a real backend. Every storage backend (`files` now,
//! PostgreSQL + S3 later) runs [`source_store_contract`] on a fresh, empty
//! store, so all of them provably behave the same.
//!
//! Each `check_*` function can also run alone on a fresh store: it starts
//! from an empty store and leaves it empty again. Where backends legitimately
//! differ (how many versions they keep), the store's own
//! [`SourceStore::history`] says which behaviour to expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use faas_ports::{
    CollectionPath, EnvMap, FunctionName, Language, NewVersion, PortError, SourceStore, Version, VersionHistory,
};

/// Runs every check of the contract, in order, on a fresh empty store.
pub async fn source_store_contract(store: &dyn SourceStore) {
    check_fresh_store(store).await;
    check_collections(store).await;
    check_collection_env(store).await;
    check_function_versions(store).await;
    check_listings(store).await;
    check_delete_collection(store).await;
    check_concurrent_saves(store).await;
    check_stored_names(store).await;
    check_fresh_store(store).await;
}

/// Names the Go version could store (outside today's grammar) are saved,
/// listed in byte order, read, versioned and deleted like any other.
pub async fn check_stored_names(store: &dyn SourceStore) {
    let team = cp("go-names");
    store.create_collection(&team, &EnvMap::new()).await.unwrap();
    let raw_names = ["my.func", "Grüße Welt", ".hidden", "1st", "a.lock", "x.env"];
    for collection in [&CollectionPath::root(), &team] {
        for raw in raw_names {
            let mut new = new_version(collection, "placeholder", SOURCE_1, &env(&[("A", raw)]));
            new.name = FunctionName::parse_stored(raw).unwrap();
            let saved = store.save_function(&new).await.unwrap();
            assert_eq!(saved.name.as_str(), raw);
            assert_eq!(saved.version, version(1), "{raw}");
        }
        let listed = store.list_functions(collection).await.unwrap();
        let mut want: Vec<&str> = raw_names.to_vec();
        want.sort();
        assert_eq!(names(&listed), want, "every stored name is listed, in byte order");
        for raw in raw_names {
            let name = FunctionName::parse_stored(raw).unwrap();
            let got = store.get_function(collection, &name, None).await.unwrap();
            assert_eq!((got.name.as_str(), got.env.get("A")), (raw, Some(raw)));
            let mut next = new_version(collection, "placeholder", SOURCE_2, &EnvMap::new());
            next.name = name.clone();
            assert_eq!(store.save_function(&next).await.unwrap().version, version(2), "{raw}");
            assert_eq!(
                store.list_versions(collection, &name).await.unwrap()[0].version,
                version(2)
            );
            store.delete_function(collection, &name).await.unwrap();
            let err = store.get_function(collection, &name, None).await.unwrap_err();
            assert_eq!(err.code(), "FUNCTION_NOT_FOUND", "{raw}: {err:?}");
        }
        assert!(store.list_functions(collection).await.unwrap().is_empty());
    }
    store.delete_collection(&team).await.unwrap();
}

/// A fresh store: the root exists and holds nothing.
pub async fn check_fresh_store(store: &dyn SourceStore) {
    let root = CollectionPath::root();
    assert!(
        store.collection_exists(&root).await.unwrap(),
        "the root collection always exists"
    );
    assert!(
        store.list_collections().await.unwrap().is_empty(),
        "a fresh store lists no collection (the root is never listed)"
    );
    assert!(
        store.list_functions(&root).await.unwrap().is_empty(),
        "a fresh store has no function"
    );
    assert!(
        store.collection_env(&root).await.unwrap().is_empty(),
        "a fresh root has an empty env"
    );
    store.health().await.expect("a usable store answers its health check");
}

/// Creating, listing and checking collections.
pub async fn check_collections(store: &dyn SourceStore) {
    let root = CollectionPath::root();
    let err = store.create_collection(&root, &EnvMap::new()).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionExists(_)),
        "creating the root is CollectionExists (the root always exists), got {err:?}"
    );

    // On a fresh store this is the very first write: nothing may be assumed to exist.
    let solo = store.create_collection(&cp("solo"), &EnvMap::new()).await.unwrap();
    assert_eq!(
        solo.path,
        cp("solo"),
        "a one-segment collection can be created on a fresh store"
    );
    store.delete_collection(&cp("solo")).await.unwrap();

    let api_env = env(&[("TEAM_API", "1")]);
    let info = store.create_collection(&cp("team/api"), &api_env).await.unwrap();
    assert_eq!(info.path, cp("team/api"), "create_collection returns the created path");
    assert!(
        store.collection_exists(&cp("team/api")).await.unwrap(),
        "a created collection exists"
    );
    assert!(
        store.collection_exists(&cp("team")).await.unwrap(),
        "creating a/b creates the ancestor a"
    );
    assert!(
        !store.collection_exists(&cp("nope")).await.unwrap(),
        "a never created collection does not exist"
    );
    assert!(
        !store.collection_exists(&cp("team/api/x")).await.unwrap(),
        "a child that was never created does not exist"
    );
    store.create_collection(&cp("team/web"), &EnvMap::new()).await.unwrap();

    assert_eq!(
        collection_paths(store).await,
        ["team", "team/api", "team/web"],
        "list_collections returns every collection below the root, ancestors included, sorted by path"
    );

    for existing in ["team/api", "team"] {
        let err = store
            .create_collection(&cp(existing), &EnvMap::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, PortError::CollectionExists(_)),
            "creating an existing collection ('{existing}', created directly or as an ancestor) is CollectionExists, got {err:?}"
        );
    }

    assert_eq!(
        store.collection_env(&cp("team/api")).await.unwrap(),
        api_env,
        "create_collection stores the collection's env"
    );
    assert!(
        store.collection_env(&cp("team")).await.unwrap().is_empty(),
        "an ancestor created on the way has an empty env"
    );

    for path in ["team/api", "team/web", "team"] {
        store.delete_collection(&cp(path)).await.unwrap();
    }
    assert!(
        collection_paths(store).await.is_empty(),
        "deleted collections are no longer listed"
    );
}

/// Reading and replacing collection envs, the root's included.
pub async fn check_collection_env(store: &dyn SourceStore) {
    let root = CollectionPath::root();
    let root_env = env(&[("ROOT_A", "1")]);
    store.set_collection_env(&root, &root_env).await.unwrap();
    assert_eq!(
        store.collection_env(&root).await.unwrap(),
        root_env,
        "the root collection has its own env"
    );
    store.set_collection_env(&root, &EnvMap::new()).await.unwrap();
    assert!(
        store.collection_env(&root).await.unwrap().is_empty(),
        "setting an empty env clears the root env"
    );

    store.create_collection(&cp("envs"), &EnvMap::new()).await.unwrap();
    let first = env(&[("A", "1"), ("B", "two words")]);
    store.set_collection_env(&cp("envs"), &first).await.unwrap();
    assert_eq!(
        store.collection_env(&cp("envs")).await.unwrap(),
        first,
        "set_collection_env stores the env"
    );
    let second = env(&[("C", "3")]);
    store.set_collection_env(&cp("envs"), &second).await.unwrap();
    assert_eq!(
        store.collection_env(&cp("envs")).await.unwrap(),
        second,
        "set_collection_env replaces the whole env (no merge)"
    );
    assert!(
        store.collection_env(&root).await.unwrap().is_empty(),
        "a collection's env does not leak into the root's"
    );

    let err = store.set_collection_env(&cp("ghost"), &first).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotFound(_)),
        "set_collection_env on a missing collection is CollectionNotFound, got {err:?}"
    );
    let err = store.collection_env(&cp("ghost")).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotFound(_)),
        "collection_env of a missing collection is CollectionNotFound, got {err:?}"
    );
    assert!(
        !store.collection_exists(&cp("ghost")).await.unwrap(),
        "a failed env write creates no collection"
    );

    store.delete_collection(&cp("envs")).await.unwrap();
}

/// Saving, loading, pinning and deleting versions of a function.
pub async fn check_function_versions(store: &dyn SourceStore) {
    let keeps_history = store.history() == VersionHistory::Full;
    let root = CollectionPath::root();
    let hello = name("hello");
    let v1_env = env(&[("GREETING", "hi")]);

    let d1 = store
        .save_function(&new_version(&root, "hello", SOURCE_1, &v1_env))
        .await
        .unwrap();
    assert_eq!(d1.version, version(1), "the first save of a function is version 1");
    assert_eq!(d1.deployment_id(), "hello@v1", "deployment id of a root function");
    assert_eq!(
        (
            d1.collection_path.clone(),
            d1.name.clone(),
            d1.language,
            d1.source_code.as_str(),
            d1.env.clone()
        ),
        (
            root.clone(),
            hello.clone(),
            Language::Javascript,
            SOURCE_1,
            v1_env.clone()
        ),
        "save_function returns what was saved"
    );
    let got = store.get_function(&root, &hello, None).await.unwrap();
    assert_eq!(
        (got.version, got.source_code.as_str(), got.env.clone()),
        (version(1), SOURCE_1, v1_env.clone()),
        "get_function loads the current version with its source and env"
    );
    assert_eq!(
        store.current_revision(&root, &hello).await.unwrap().version,
        version(1),
        "current_revision after one save"
    );

    let d2 = store
        .save_function(&new_version(&root, "hello", SOURCE_2, &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(d2.version, version(2), "saving again writes the next version");
    let got = store.get_function(&root, &hello, None).await.unwrap();
    assert_eq!(
        (got.version, got.source_code.as_str()),
        (version(2), SOURCE_2),
        "get_function without a pin loads the newest version"
    );
    assert!(got.env.is_empty(), "a version saved with an empty env has an empty env");
    assert_eq!(
        store.current_revision(&root, &hello).await.unwrap().version,
        version(2),
        "current_revision follows saves"
    );

    let pinned = store.get_function(&root, &hello, Some(version(2))).await.unwrap();
    assert_eq!(
        (pinned.version, pinned.source_code.as_str()),
        (version(2), SOURCE_2),
        "pinning the current version loads it"
    );

    let old = store.get_function(&root, &hello, Some(version(1))).await;
    let unknown = store.get_function(&root, &hello, Some(version(99))).await;
    if keeps_history {
        let old = old.unwrap();
        assert_eq!(
            (old.version, old.source_code.as_str(), old.env.clone()),
            (version(1), SOURCE_1, v1_env.clone()),
            "a store that keeps history loads an old pinned version as it was saved"
        );
        let err = unknown.unwrap_err();
        assert!(
            matches!(err, PortError::VersionNotFound { ref function, version: 99 } if function == "hello"),
            "a store that keeps history answers VersionNotFound for a version never saved, got {err:?}"
        );
    } else {
        for (result, asked) in [(old, 1), (unknown, 99)] {
            let err = result.unwrap_err();
            assert!(
                matches!(
                    err,
                    PortError::VersionNotAvailable { ref function, version, current: 2 }
                        if function == "hello" && version == asked
                ),
                "a store that keeps only the current version answers VersionNotAvailable (with the current version) for v{asked}, got {err:?}"
            );
        }
    }

    let versions: Vec<u64> = store
        .list_versions(&root, &hello)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version.get())
        .collect();
    let want: Vec<u64> = if keeps_history { vec![2, 1] } else { vec![2] };
    assert_eq!(versions, want, "list_versions lists the stored versions, newest first");

    // Versions are counted per (collection, name).
    store
        .create_collection(&cp("nested/deep"), &EnvMap::new())
        .await
        .unwrap();
    let nested = store
        .save_function(&new_version(&cp("nested/deep"), "hello", SOURCE_1, &EnvMap::new()))
        .await
        .unwrap();
    assert_eq!(
        nested.version,
        version(1),
        "a same-named function in another collection has its own versions"
    );
    assert_eq!(
        nested.deployment_id(),
        "nested/deep/hello@v1",
        "deployment id of a nested function"
    );
    assert_eq!(
        store.current_revision(&root, &hello).await.unwrap().version,
        version(2),
        "saving in a collection leaves the root function alone"
    );

    // Unknown functions.
    let missing = name("missing");
    let err = store.get_function(&root, &missing, None).await.unwrap_err();
    assert!(
        matches!(err, PortError::FunctionNotFound(ref id) if id == "missing"),
        "get_function of an unknown function is FunctionNotFound(id), got {err:?}"
    );
    let err = store
        .get_function(&cp("nested/deep"), &missing, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::FunctionNotFound(ref id) if id == "nested/deep/missing"),
        "FunctionNotFound carries the function id (collection/path/name), got {err:?}"
    );
    let err = store.current_revision(&root, &missing).await.unwrap_err();
    assert!(
        matches!(err, PortError::FunctionNotFound(_)),
        "current_revision of an unknown function, got {err:?}"
    );
    let err = store.list_versions(&root, &missing).await.unwrap_err();
    assert!(
        matches!(err, PortError::FunctionNotFound(_)),
        "list_versions of an unknown function, got {err:?}"
    );
    let err = store.delete_function(&root, &missing).await.unwrap_err();
    assert!(
        matches!(err, PortError::FunctionNotFound(_)),
        "delete_function of an unknown function, got {err:?}"
    );

    // Missing collections come before missing functions.
    let ghost = cp("ghost");
    let err = store
        .save_function(&new_version(&ghost, "hello", SOURCE_1, &EnvMap::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotFound(_)),
        "save_function into a missing collection is CollectionNotFound, got {err:?}"
    );
    assert!(
        !store.collection_exists(&ghost).await.unwrap(),
        "a refused save creates no collection"
    );
    let err = store.get_function(&ghost, &hello, None).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotFound(_)),
        "get_function in a missing collection is CollectionNotFound, got {err:?}"
    );
    let err = store.list_functions(&ghost).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotFound(_)),
        "list_functions of a missing collection is CollectionNotFound, got {err:?}"
    );

    // Deleting removes every version.
    store.delete_function(&root, &hello).await.unwrap();
    for pin in [None, Some(version(1)), Some(version(2))] {
        let err = store.get_function(&root, &hello, pin).await.unwrap_err();
        assert!(
            matches!(err, PortError::FunctionNotFound(_)),
            "after delete_function every version is gone (pin {pin:?}), got {err:?}"
        );
    }
    let err = store.current_revision(&root, &hello).await.unwrap_err();
    assert!(
        matches!(err, PortError::FunctionNotFound(_)),
        "current_revision after delete, got {err:?}"
    );
    assert!(
        store.list_functions(&root).await.unwrap().is_empty(),
        "a deleted function is no longer listed"
    );
    assert_eq!(
        store
            .current_revision(&cp("nested/deep"), &hello)
            .await
            .unwrap()
            .version,
        version(1),
        "deleting a root function leaves a same-named function elsewhere alone"
    );

    store.delete_function(&cp("nested/deep"), &hello).await.unwrap();
    store.delete_collection(&cp("nested/deep")).await.unwrap();
    store.delete_collection(&cp("nested")).await.unwrap();
}

/// `list_functions`: one collection, not recursive, sorted by name.
pub async fn check_listings(store: &dyn SourceStore) {
    let root = CollectionPath::root();
    store.create_collection(&cp("shop/cart"), &EnvMap::new()).await.unwrap();
    for (collection, fname) in [
        ("shop/cart", "zeta"),
        ("shop/cart", "alpha"),
        ("shop/cart", "Beta"),
        ("shop", "mid"),
        ("", "top"),
    ] {
        store
            .save_function(&new_version(&cp(collection), fname, SOURCE_1, &EnvMap::new()))
            .await
            .unwrap();
    }
    store
        .save_function(&new_version(&cp("shop/cart"), "alpha", SOURCE_2, &EnvMap::new()))
        .await
        .unwrap();

    let cart = store.list_functions(&cp("shop/cart")).await.unwrap();
    let rows: Vec<(String, u64)> = cart.iter().map(|f| (f.name.to_string(), f.version.get())).collect();
    assert_eq!(
        rows,
        [("Beta".to_owned(), 1), ("alpha".to_owned(), 2), ("zeta".to_owned(), 1)],
        "list_functions returns the functions of one collection sorted by name (byte order), with their current version"
    );
    assert!(
        cart.iter()
            .all(|f| f.collection_path == cp("shop/cart") && f.language == Language::Javascript),
        "listed functions carry their collection and language"
    );
    let shop: Vec<String> = names(&store.list_functions(&cp("shop")).await.unwrap());
    assert_eq!(
        shop,
        ["mid"],
        "list_functions does not include sub-collections' functions"
    );
    let top: Vec<String> = names(&store.list_functions(&root).await.unwrap());
    assert_eq!(top, ["top"], "list_functions of the root lists only root functions");

    for (collection, fname) in [
        ("shop/cart", "zeta"),
        ("shop/cart", "alpha"),
        ("shop/cart", "Beta"),
        ("shop", "mid"),
        ("", "top"),
    ] {
        store.delete_function(&cp(collection), &name(fname)).await.unwrap();
    }
    store.delete_collection(&cp("shop/cart")).await.unwrap();
    store.delete_collection(&cp("shop")).await.unwrap();
}

/// `delete_collection` refuses non-empty collections.
pub async fn check_delete_collection(store: &dyn SourceStore) {
    store
        .create_collection(&cp("box/inner"), &env(&[("K", "v")]))
        .await
        .unwrap();
    store
        .save_function(&new_version(&cp("box/inner"), "f", SOURCE_1, &EnvMap::new()))
        .await
        .unwrap();

    let err = store.delete_collection(&cp("box")).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotEmpty(_)),
        "a collection with a sub-collection is CollectionNotEmpty, got {err:?}"
    );
    let err = store.delete_collection(&cp("box/inner")).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotEmpty(_)),
        "a collection with a function is CollectionNotEmpty, got {err:?}"
    );
    assert!(
        store.collection_exists(&cp("box/inner")).await.unwrap(),
        "a refused delete keeps the collection"
    );
    assert_eq!(
        store
            .current_revision(&cp("box/inner"), &name("f"))
            .await
            .unwrap()
            .version,
        version(1),
        "a refused delete keeps its functions"
    );

    store.delete_function(&cp("box/inner"), &name("f")).await.unwrap();
    store.delete_collection(&cp("box/inner")).await.unwrap();
    assert!(
        !store.collection_exists(&cp("box/inner")).await.unwrap(),
        "a deleted collection no longer exists"
    );
    assert!(
        store.collection_exists(&cp("box")).await.unwrap(),
        "deleting a child keeps its parent"
    );
    let err = store.delete_collection(&cp("box/inner")).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotFound(_)),
        "deleting a missing collection is CollectionNotFound, got {err:?}"
    );

    store
        .save_function(&new_version(&cp("box"), "g", SOURCE_1, &EnvMap::new()))
        .await
        .unwrap();
    let err = store.delete_collection(&cp("box")).await.unwrap_err();
    assert!(
        matches!(err, PortError::CollectionNotEmpty(_)),
        "a parent with a function is not empty, got {err:?}"
    );
    store.delete_function(&cp("box"), &name("g")).await.unwrap();
    store.delete_collection(&cp("box")).await.unwrap();
    assert!(
        collection_paths(store).await.is_empty(),
        "emptied collections can all be deleted"
    );

    // A re-created collection starts empty, env included.
    store.create_collection(&cp("box"), &EnvMap::new()).await.unwrap();
    assert!(
        store.collection_env(&cp("box")).await.unwrap().is_empty(),
        "a re-created collection has a fresh env"
    );
    store.delete_collection(&cp("box")).await.unwrap();

    assert!(
        store.delete_collection(&CollectionPath::root()).await.is_err(),
        "the root collection can never be deleted"
    );
    assert!(
        store.collection_exists(&CollectionPath::root()).await.unwrap(),
        "the root still exists"
    );
}

/// 20 concurrent saves of one function get 20 distinct versions, 1 to 20.
pub async fn check_concurrent_saves(store: &dyn SourceStore) {
    const SAVES: u64 = 20;
    let root = CollectionPath::root();
    let saves = (0..SAVES).map(|i| {
        let new = new_version(
            &root,
            "counter",
            &format!("export const handler = async () => ({{ ok: true, data: {i} }});"),
            &EnvMap::new(),
        );
        async move { store.save_function(&new).await }
    });
    let results = futures_util::future::join_all(saves).await;
    let mut versions: Vec<u64> = results
        .into_iter()
        .map(|r| r.expect("every concurrent save succeeds").version.get())
        .collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=SAVES).collect::<Vec<_>>(),
        "concurrent saves of one function get distinct versions without gaps (no lost update)"
    );
    assert_eq!(
        store.current_revision(&root, &name("counter")).await.unwrap().version,
        version(SAVES),
        "after concurrent saves the current version is the number of saves"
    );
    let current = store.get_function(&root, &name("counter"), None).await.unwrap();
    assert_eq!(
        current.version,
        version(SAVES),
        "get_function sees the last concurrent save"
    );
    store.delete_function(&root, &name("counter")).await.unwrap();
}

const SOURCE_1: &str = "export async function handler(input) { return { ok: true, data: 1 }; }\n";
const SOURCE_2: &str = "export async function handler(input) { return { ok: true, data: 2 }; }\n";

fn cp(raw: &str) -> CollectionPath {
    CollectionPath::parse(raw).unwrap()
}

fn name(raw: &str) -> FunctionName {
    FunctionName::parse(raw).unwrap()
}

fn version(n: u64) -> Version {
    Version::new(n).unwrap()
}

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    EnvMap::parse(map).unwrap()
}

fn new_version(collection: &CollectionPath, fname: &str, source: &str, env: &EnvMap) -> NewVersion {
    NewVersion {
        collection_path: collection.clone(),
        name: name(fname),
        language: Language::Javascript,
        source_code: source.to_owned(),
        env: env.clone(),
    }
}

fn names(functions: &[faas_ports::FunctionSummary]) -> Vec<String> {
    functions.iter().map(|f| f.name.to_string()).collect()
}

async fn collection_paths(store: &dyn SourceStore) -> Vec<String> {
    store
        .list_collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| String::from(c.path))
        .collect()
}
