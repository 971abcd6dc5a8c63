//! The `SourceStore` contract over `db_s3`: alone, behind the function
//! cache, and behind env encryption at rest.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_source_store_contract() {
    let db = TestDb::new("contract").await;
    let store = db.store().await;
    crate::testkit::source_store_contract(&store).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_contract_behind_the_function_cache() {
    let db = TestDb::new("cached").await;
    let store: Arc<dyn SourceStore> = Arc::new(db.store().await);
    let cached = crate::cache::CachedSourceStore::new(store, std::num::NonZeroUsize::new(4).unwrap());
    crate::testkit::source_store_contract(&cached).await;
    db.drop_database().await;
}

/// Env encryption at rest over `db_s3`: every `env_json` in PostgreSQL holds
/// sealed values, never the plaintext; reads (the current version and a
/// pinned one) return the plaintext; the contract holds behind the decorator.
#[cfg(feature = "encryption")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_env_at_rest_in_postgresql() {
    use crate::encryption::{EncryptedStore, EnvEncryptionConfig};
    const SECRET: &str = "pg-secret-value-7731";
    let db = TestDb::new("sealed").await;
    let keys = EnvEncryptionConfig {
        key: Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into()),
        previous_keys: Vec::new(),
    }
    .keyring()
    .unwrap();
    let inner = Arc::new(db.store().await);
    let store = EncryptedStore::new(inner.clone(), keys.clone());
    let team = cp("team");
    let secret = env(&[("TOKEN", SECRET)]);
    store.create_collection(&team, &secret).await.unwrap();
    store
        .set_collection_env(&CollectionPath::root(), &secret)
        .await
        .unwrap();
    store
        .save_function(&new_version(&team, "f", "v1", &secret))
        .await
        .unwrap();
    store
        .save_function(&new_version(&team, "f", "v2", &env(&[])))
        .await
        .unwrap();

    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT env_json::text FROM collection_paths UNION ALL SELECT env_json::text FROM functions \
         UNION ALL SELECT env_json::text FROM function_versions",
    )
    .fetch_all(&inner.inner.pool)
    .await
    .unwrap();
    assert!(rows.iter().all(|r| !r.contains(SECRET)), "{rows:?}");
    let sealed = rows
        .iter()
        .filter(|r| r.contains(faas_ports::SEALED_ENV_PREFIX))
        .count();
    assert_eq!(sealed, 3, "root, team and version 1: {rows:?}");

    assert_eq!(store.collection_env(&team).await.unwrap(), secret);
    assert_eq!(store.collection_env(&CollectionPath::root()).await.unwrap(), secret);
    let pinned = store.get_function(&team, &name("f"), Some(v(1))).await.unwrap();
    assert_eq!(pinned.env, secret);
    assert!(store
        .get_function(&team, &name("f"), None)
        .await
        .unwrap()
        .env
        .is_empty());
    let keyless = EncryptedStore::new(inner.clone(), crate::encryption::Keyring::default());
    let err = keyless.get_function(&team, &name("f"), Some(v(1))).await.unwrap_err();
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    drop((store, keyless, inner));
    db.drop_database().await;

    let db = TestDb::new("sealed_contract").await;
    let store = EncryptedStore::new(Arc::new(db.store().await), keys);
    crate::testkit::source_store_contract(&store).await;
    drop(store);
    db.drop_database().await;
}
