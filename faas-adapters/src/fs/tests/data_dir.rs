//! The data directory: creation, health, stale temp files and oversize
//! files.

use std::fs::File;

use faas_ports::Component;

use super::*;

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
