//! Collection use cases: create, list (with prefix), env, delete.

use faas_ports::{CollectionInfo, CollectionPath, EnvMap, PortError};

use crate::{DomainError, Engine};

impl Engine {
    /// Creates a collection (and its missing ancestors). The root always
    /// exists and cannot be created (`INVALID_COLLECTION_PATH`).
    #[tracing::instrument(skip_all, fields(collection = %path))]
    pub async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, DomainError> {
        if path.is_root() {
            return Err(PortError::InvalidCollectionPath(
                "the root collection always exists; give a non-empty path".into(),
            )
            .into());
        }
        Ok(self.store.create_collection(path, env).await?)
    }

    /// Collections below the root sorted by path; with a prefix, only the
    /// prefix itself and what lies below it.
    pub async fn list_collections(&self, prefix: Option<&CollectionPath>) -> Result<Vec<CollectionInfo>, DomainError> {
        let mut all = self.store.list_collections().await?;
        all.retain(|c| !c.path.is_root() && prefix.is_none_or(|p| c.path.starts_with(p)));
        all.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(all)
    }

    /// Replaces a collection's own env (the root's too).
    #[tracing::instrument(skip_all, fields(collection = %path))]
    pub async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), DomainError> {
        self.ensure_collection(path).await?;
        Ok(self.store.set_collection_env(path, env).await?)
    }

    /// A collection's own env (not merged with its ancestors).
    pub async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, DomainError> {
        self.ensure_collection(path).await?;
        Ok(self.store.collection_env(path).await?)
    }

    /// Deletes an empty collection; the root cannot be deleted.
    #[tracing::instrument(skip_all, fields(collection = %path))]
    pub async fn delete_collection(&self, path: &CollectionPath) -> Result<(), DomainError> {
        if path.is_root() {
            return Err(PortError::InvalidCollectionPath("the root collection cannot be deleted".into()).into());
        }
        self.ensure_collection(path).await?;
        Ok(self.store.delete_collection(path).await?)
    }
}
