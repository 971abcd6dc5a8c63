//! Keys, the sealed format, and the decorator over the `files` store
//! (the `db_s3` run is in `db_s3::tests`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use faas_ports::{CollectionPath, EnvMap, FunctionName, Language, NewVersion, SourceStore, SEALED_ENV_PREFIX};

use super::*;
use crate::fs::FsSourceStore;

const SECRET: &str = "hunter2-the-secret-value";

fn key(byte: u8) -> String {
    STANDARD.encode([byte; KEY_BYTES])
}

fn keyring(current: Option<u8>, previous: &[u8]) -> Keyring {
    EnvEncryptionConfig {
        key: current.map(key),
        previous_keys: previous.iter().map(|b| key(*b)).collect(),
    }
    .keyring()
    .unwrap()
}

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    EnvMap::parse(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()).unwrap()
}

#[test]
fn a_value_round_trips_sealed_with_a_fresh_nonce_each_time() {
    let keys = keyring(Some(1), &[]);
    let id = keys.current_key_id().unwrap().to_owned();
    assert_eq!(id.len(), 8);
    let first = keys.seal("TOKEN", SECRET).unwrap();
    let second = keys.seal("TOKEN", SECRET).unwrap();
    assert!(first.starts_with(&format!("{SEALED_ENV_PREFIX}v1:{id}:")), "{first}");
    assert!(!first.contains(SECRET));
    assert_ne!(first, second, "a random nonce per value");
    assert_eq!(keys.open("TOKEN", &first).unwrap(), SECRET);
    assert_eq!(keys.open("TOKEN", &second).unwrap(), SECRET);
    assert_eq!(keys.open("TOKEN", "plain").unwrap(), "plain", "plain values pass");
    // The largest value fits the stored limit.
    let big = "x".repeat(faas_ports::MAX_ENV_VALUE_LEN);
    let sealed = keys.seal_env(&env(&[("BIG", &big)])).unwrap();
    assert_eq!(keys.open_env(&sealed, "test").unwrap().get("BIG"), Some(big.as_str()));
}

#[test]
fn a_wrong_or_missing_key_is_a_clear_error() {
    let sealed = keyring(Some(1), &[]).seal("TOKEN", SECRET).unwrap();
    let other = keyring(Some(2), &[]);
    let id = keyring(Some(1), &[]).current_key_id().unwrap().to_owned();
    assert_eq!(other.open("TOKEN", &sealed), Err(OpenError::UnknownKey(id.clone())));
    let err = other
        .open_env(
            &EnvMap::parse_stored(BTreeMap::from([("TOKEN".into(), sealed.clone())])).unwrap(),
            "function 'f' version 1",
        )
        .unwrap_err();
    assert_eq!(err.code(), "INTERNAL");
    let text = err.to_string();
    for want in [
        "TOKEN",
        "function 'f' version 1",
        &id,
        KEY_VARIABLE,
        PREVIOUS_KEYS_VARIABLE,
    ] {
        assert!(text.contains(want), "{text} should name {want}");
    }
    let none = Keyring::default();
    assert_eq!(none.open("TOKEN", &sealed), Err(OpenError::UnknownKey(id)));
    assert_eq!(none.seal("TOKEN", SECRET).unwrap(), SECRET, "no key: written plain");
}

#[test]
fn tampered_moved_or_malformed_values_are_refused() {
    let keys = keyring(Some(1), &[]);
    let sealed = keys.seal("TOKEN", SECRET).unwrap();
    let (head, data) = sealed.rsplit_once(':').unwrap();
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = format!(
        "{head}:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes)
    );
    assert!(matches!(keys.open("TOKEN", &tampered), Err(OpenError::Forged(_))));
    assert!(
        matches!(keys.open("OTHER", &sealed), Err(OpenError::Forged(_))),
        "a sealed value is bound to its env key"
    );
    for bad in [
        format!("{SEALED_ENV_PREFIX}v9:abcd:xyz"),
        format!("{SEALED_ENV_PREFIX}v1:nokey"),
        format!("{head}:***"),
        format!("{head}:AAAA"),
    ] {
        assert!(
            matches!(keys.open("TOKEN", &bad), Err(OpenError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn keys_are_checked_naming_the_variable_and_never_shown() {
    let bad = |key: Option<&str>, previous: &[&str]| {
        EnvEncryptionConfig {
            key: key.map(str::to_owned),
            previous_keys: previous.iter().map(|s| (*s).to_owned()).collect(),
        }
        .validate()
        .unwrap_err()
        .to_string()
    };
    assert!(bad(Some("not base64!"), &[]).contains(KEY_VARIABLE));
    let short = STANDARD.encode([7u8; 16]);
    let text = bad(Some(&short), &[]);
    assert!(text.contains("32 bytes") && !text.contains(&short), "{text}");
    let text = bad(Some(&key(1)), &[&key(2), "nope"]);
    assert!(
        text.contains(PREVIOUS_KEYS_VARIABLE) && text.contains("key 2"),
        "{text}"
    );
    assert_eq!(
        EnvEncryptionConfig::parse_previous_keys(" a, ,b ,"),
        vec!["a".to_owned(), "b".to_owned()]
    );
    let config = EnvEncryptionConfig {
        key: Some(key(1)),
        previous_keys: vec![key(2)],
    };
    let debug = format!("{config:?} {:?}", config.keyring().unwrap());
    assert!(!debug.contains(&key(1)) && !debug.contains(&key(2)), "{debug}");
    assert!(
        debug.contains(keyring(Some(1), &[]).current_key_id().unwrap()),
        "{debug}"
    );
}

fn fs_store(dir: &Path) -> Arc<FsSourceStore> {
    Arc::new(FsSourceStore::new(dir.join("data")).unwrap())
}

/// Every byte under `dir`, file by file.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                out.push((path.display().to_string(), text));
            }
        }
    }
    out
}

fn new_version(collection: &CollectionPath, name: &str, env: &EnvMap) -> NewVersion {
    NewVersion {
        collection_path: collection.clone(),
        name: FunctionName::parse(name).unwrap(),
        language: Language::Javascript,
        source_code: "export async function handler() { return { ok: true } }".into(),
        env: env.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_source_store_contract_over_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = EncryptedStore::new(fs_store(dir.path()), keyring(Some(1), &[]));
    crate::testkit::source_store_contract(&store).await;
}

#[tokio::test]
async fn files_on_disk_hold_sealed_values_and_reads_return_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = EncryptedStore::new(fs_store(dir.path()), keyring(Some(1), &[]));
    let team = CollectionPath::parse("team").unwrap();
    let secret = env(&[("TOKEN", SECRET)]);
    store.create_collection(&team, &secret).await.unwrap();
    store
        .set_collection_env(&CollectionPath::root(), &secret)
        .await
        .unwrap();
    let saved = store.save_function(&new_version(&team, "f", &secret)).await.unwrap();
    assert_eq!(saved.env, secret);

    let files = files_under(dir.path());
    assert!(files.iter().all(|(_, text)| !text.contains(SECRET)), "{files:?}");
    let sealed = files
        .iter()
        .filter(|(_, text)| text.contains(SEALED_ENV_PREFIX))
        .count();
    assert_eq!(sealed, 3, "root env, collection env, function env: {files:?}");

    assert_eq!(store.collection_env(&team).await.unwrap(), secret);
    assert_eq!(store.collection_env(&CollectionPath::root()).await.unwrap(), secret);
    let name = FunctionName::parse("f").unwrap();
    assert_eq!(store.get_function(&team, &name, None).await.unwrap().env, secret);

    // The same data without the key: a clear error, not the sealed text.
    let keyless = EncryptedStore::new(fs_store(dir.path()), Keyring::default());
    let err = keyless.get_function(&team, &name, None).await.unwrap_err();
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    let err = keyless.collection_env(&team).await.unwrap_err();
    assert!(err.to_string().contains("collection 'team'"), "{err}");
}

#[tokio::test]
async fn rotation_reads_with_previous_keys_and_reseals_on_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let team = CollectionPath::parse("team").unwrap();
    let name = FunctionName::parse("f").unwrap();
    let secret = env(&[("TOKEN", SECRET)]);
    // Written before encryption was on, then under key 1.
    let plain = EncryptedStore::new(fs_store(dir.path()), Keyring::default());
    plain.create_collection(&team, &secret).await.unwrap();
    let old = EncryptedStore::new(fs_store(dir.path()), keyring(Some(1), &[]));
    old.save_function(&new_version(&team, "f", &secret)).await.unwrap();
    assert_eq!(
        old.collection_env(&team).await.unwrap(),
        secret,
        "plain values stay readable"
    );

    // Rotated: key 2 current, key 1 previous.
    let rotated = EncryptedStore::new(fs_store(dir.path()), keyring(Some(2), &[1]));
    assert_eq!(rotated.get_function(&team, &name, None).await.unwrap().env, secret);
    let new_id = keyring(Some(2), &[]).current_key_id().unwrap().to_owned();
    let old_id = keyring(Some(1), &[]).current_key_id().unwrap().to_owned();
    let raw = rotated.inner().get_function(&team, &name, None).await.unwrap();
    assert!(raw.env.get("TOKEN").unwrap().contains(&old_id));

    // The next writes seal with key 2; key 1 is no longer needed for them.
    rotated.set_collection_env(&team, &secret).await.unwrap();
    rotated.save_function(&new_version(&team, "f", &secret)).await.unwrap();
    let raw = rotated.inner().get_function(&team, &name, None).await.unwrap();
    assert!(raw.env.get("TOKEN").unwrap().contains(&new_id));
    let raw_env = rotated.inner().collection_env(&team).await.unwrap();
    assert!(raw_env.get("TOKEN").unwrap().contains(&new_id));
    let only_new = EncryptedStore::new(fs_store(dir.path()), keyring(Some(2), &[]));
    assert_eq!(only_new.get_function(&team, &name, None).await.unwrap().env, secret);
    assert_eq!(only_new.collection_env(&team).await.unwrap(), secret);
}
