//! Encryption at rest of env values (docs/api.md "Env encryption at rest"):
//! [`EncryptedStore`], a [`SourceStore`] decorator over any backend that
//! seals every env value it writes with the current key
//! (`LOWCODE_FAAS_ENV_ENCRYPTION_KEY`, XChaCha20-Poly1305, a random nonce
//! per value) and opens every sealed value it reads with the key its id
//! names (the current one or one of `LOWCODE_FAAS_ENV_ENCRYPTION_PREVIOUS_KEYS`).
//!
//! Invariants: values above this decorator are always plain, below it sealed
//! whenever a key is set; plain and sealed values coexist (a store written
//! before the key was set stays readable, and each value is re-sealed with
//! the current key when it is next written); a sealed value whose key is
//! missing, or that does not authenticate, is an `INTERNAL` error naming
//! the env key, where it was read and the key id, never garbage and never
//! silently dropped. Names, sources and versions pass through unchanged.

mod keys;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use faas_ports::{
    CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, NewVersion, PortError, Revision,
    SourceStore, Version, VersionHistory, VersionItem,
};

pub use keys::{EnvEncryptionConfig, Keyring, OpenError, KEY_BYTES, KEY_VARIABLE, PREVIOUS_KEYS_VARIABLE};

/// A [`SourceStore`] whose env values are encrypted at rest (see the module docs).
#[derive(Debug)]
pub struct EncryptedStore<S: ?Sized = dyn SourceStore> {
    inner: Arc<S>,
    keys: Keyring,
}

impl<S: SourceStore + ?Sized> EncryptedStore<S> {
    /// Wraps `inner`; `keys` seals what is written and opens what is read.
    pub fn new(inner: Arc<S>, keys: Keyring) -> Self {
        Self { inner, keys }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    fn open_collection(&self, path: &CollectionPath, env: EnvMap) -> Result<EnvMap, PortError> {
        let owner = if path.is_root() {
            "the root collection".to_owned()
        } else {
            format!("collection '{path}'")
        };
        self.keys.open_env(&env, &owner)
    }

    fn open_deployment(&self, mut d: Deployment) -> Result<Deployment, PortError> {
        let owner = format!("function '{}' version {}", d.function_id(), d.version);
        d.env = self.keys.open_env(&d.env, &owner)?;
        Ok(d)
    }
}

#[async_trait]
impl<S: SourceStore + ?Sized> SourceStore for EncryptedStore<S> {
    async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError> {
        self.inner.create_collection(path, &self.keys.seal_env(env)?).await
    }

    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        self.inner.list_collections().await
    }

    async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        self.inner.collection_exists(path).await
    }

    async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        let env = self.inner.collection_env(path).await?;
        self.open_collection(path, env)
    }

    async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        self.inner.set_collection_env(path, &self.keys.seal_env(env)?).await
    }

    async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        self.inner.delete_collection(path).await
    }

    async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError> {
        let sealed = NewVersion {
            env: self.keys.seal_env(&new.env)?,
            ..new.clone()
        };
        let mut saved = self.inner.save_function(&sealed).await?;
        // What was written is exactly `new.env`, sealed.
        saved.env = new.env.clone().without_ignored_keys();
        Ok(saved)
    }

    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<Version>,
    ) -> Result<Deployment, PortError> {
        let d = self.inner.get_function(collection, name, version).await?;
        self.open_deployment(d)
    }

    async fn current_revision(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Revision, PortError> {
        self.inner.current_revision(collection, name).await
    }

    async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
        self.inner.list_functions(collection).await
    }

    async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, PortError> {
        self.inner.list_versions(collection, name).await
    }

    async fn delete_function(&self, collection: &CollectionPath, name: &FunctionName) -> Result<(), PortError> {
        self.inner.delete_function(collection, name).await
    }

    async fn health(&self) -> Result<(), PortError> {
        self.inner.health().await
    }

    fn history(&self) -> VersionHistory {
        self.inner.history()
    }
}
