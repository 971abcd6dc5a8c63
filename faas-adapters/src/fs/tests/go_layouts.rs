//! The layouts the Go version wrote (names, legacy and collection trees),
//! read, listed and updated unchanged; lenient and corrupt files.

use faas_ports::Version;

use super::*;

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
