//! An in-memory [`SourceStore`] with full version history: for tests of code
//! that uses the engine, for examples, and for one-off runs such as
//! `faas_handler_kit::run_handler`. It keeps the trait's rules like
//! every other backend (it runs the same contract suite), but nothing
//! survives the process.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use faas_ports::{
    function_id, CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, NewVersion,
    PortError, Revision, SourceStore, Version, VersionItem,
};

#[derive(Debug, Default)]
struct State {
    /// Every collection below the root, with its env and creation time.
    collections: BTreeMap<CollectionPath, (EnvMap, DateTime<Utc>)>,
    root_env: EnvMap,
    /// Every version of every function, oldest first.
    functions: BTreeMap<(CollectionPath, FunctionName), Vec<Deployment>>,
}

/// A [`SourceStore`] in memory, keeping every version.
#[derive(Debug, Default)]
pub struct MemorySourceStore {
    state: Mutex<State>,
}

impl MemorySourceStore {
    /// An empty store: only the root collection exists.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, PortError>) -> Result<T, PortError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }
}

impl State {
    fn exists(&self, path: &CollectionPath) -> bool {
        path.is_root() || self.collections.contains_key(path)
    }

    fn require(&self, path: &CollectionPath) -> Result<(), PortError> {
        if self.exists(path) {
            Ok(())
        } else {
            Err(PortError::CollectionNotFound(path.as_str().to_owned()))
        }
    }

    fn versions(&self, collection: &CollectionPath, name: &FunctionName) -> Result<&Vec<Deployment>, PortError> {
        self.require(collection)?;
        self.functions
            .get(&(collection.clone(), name.clone()))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| PortError::FunctionNotFound(function_id(collection, name)))
    }
}

#[async_trait]
impl SourceStore for MemorySourceStore {
    async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError> {
        self.with(|s| {
            if s.exists(path) {
                return Err(PortError::CollectionExists(path.to_string()));
            }
            let now = Utc::now();
            for ancestor in path.lineage() {
                if !ancestor.is_root() && &ancestor != path {
                    s.collections.entry(ancestor).or_insert_with(|| (EnvMap::new(), now));
                }
            }
            s.collections.insert(path.clone(), (env.clone(), now));
            Ok(CollectionInfo {
                path: path.clone(),
                created_at: now,
                // The memory store holds only valid envs.
                ignored_env_keys: Vec::new(),
            })
        })
    }

    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        self.with(|s| {
            Ok(s.collections
                .iter()
                .map(|(path, (_, created_at))| CollectionInfo {
                    path: path.clone(),
                    created_at: *created_at,
                    ignored_env_keys: Vec::new(),
                })
                .collect())
        })
    }

    async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        self.with(|s| Ok(s.exists(path)))
    }

    async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        self.with(|s| {
            s.require(path)?;
            Ok(if path.is_root() {
                s.root_env.clone()
            } else {
                s.collections.get(path).map(|(env, _)| env.clone()).unwrap_or_default()
            })
        })
    }

    async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        self.with(|s| {
            s.require(path)?;
            if path.is_root() {
                s.root_env = env.clone();
            } else if let Some((current, _)) = s.collections.get_mut(path) {
                *current = env.clone();
            }
            Ok(())
        })
    }

    async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        self.with(|s| {
            if path.is_root() {
                return Err(PortError::InvalidCollectionPath(
                    "the root collection cannot be deleted".into(),
                ));
            }
            s.require(path)?;
            let has_child = s.collections.keys().any(|c| c != path && c.starts_with(path));
            let has_function = s.functions.keys().any(|(c, _)| c == path);
            if has_child || has_function {
                return Err(PortError::CollectionNotEmpty(path.as_str().to_owned()));
            }
            s.collections.remove(path);
            Ok(())
        })
    }

    async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError> {
        self.with(|s| {
            s.require(&new.collection_path)?;
            let versions = s
                .functions
                .entry((new.collection_path.clone(), new.name.clone()))
                .or_default();
            let version = versions.last().map_or(Version::FIRST, |d| d.version.next());
            let deployment = Deployment {
                collection_path: new.collection_path.clone(),
                name: new.name.clone(),
                language: new.language,
                source_code: new.source_code.clone(),
                env: new.env.clone(),
                version,
                created_at: Utc::now(),
            };
            versions.push(deployment.clone());
            Ok(deployment)
        })
    }

    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<Version>,
    ) -> Result<Deployment, PortError> {
        self.with(|s| {
            let versions = s.versions(collection, name)?;
            match version {
                None => versions
                    .last()
                    .cloned()
                    .ok_or_else(|| PortError::FunctionNotFound(function_id(collection, name))),
                Some(v) => {
                    versions
                        .iter()
                        .find(|d| d.version == v)
                        .cloned()
                        .ok_or_else(|| PortError::VersionNotFound {
                            function: function_id(collection, name),
                            version: v.get(),
                        })
                }
            }
        })
    }

    async fn current_revision(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Revision, PortError> {
        let d = self.get_function(collection, name, None).await?;
        Ok(Revision {
            version: d.version,
            token: format!(
                "{}:{}",
                d.version,
                d.created_at.timestamp_nanos_opt().unwrap_or_default()
            ),
        })
    }

    async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
        self.with(|s| {
            s.require(collection)?;
            Ok(s.functions
                .iter()
                .filter(|((c, _), _)| c == collection)
                .filter_map(|(_, versions)| versions.last())
                .map(|d| FunctionSummary {
                    collection_path: d.collection_path.clone(),
                    name: d.name.clone(),
                    language: d.language,
                    version: d.version,
                    created_at: d.created_at,
                })
                .collect())
        })
    }

    async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, PortError> {
        self.with(|s| {
            Ok(s.versions(collection, name)?
                .iter()
                .rev()
                .map(|d| VersionItem {
                    version: d.version,
                    created_at: d.created_at,
                })
                .collect())
        })
    }

    async fn delete_function(&self, collection: &CollectionPath, name: &FunctionName) -> Result<(), PortError> {
        self.with(|s| {
            s.versions(collection, name)?;
            s.functions.remove(&(collection.clone(), name.clone()));
            Ok(())
        })
    }

    async fn health(&self) -> Result<(), PortError> {
        Ok(())
    }

    fn history(&self) -> faas_ports::VersionHistory {
        faas_ports::VersionHistory::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::source_store_contract;

    #[tokio::test]
    async fn passes_the_source_store_contract() {
        source_store_contract(&MemorySourceStore::new()).await;
    }
}
