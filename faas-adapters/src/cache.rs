//! The function cache (SPEC §7): a [`SourceStore`] decorator that keeps
//! recently loaded [`Deployment`]s in a bounded LRU.
//!
//! Invariants and decisions:
//! - Entries are keyed by (collection, name, version). A version is
//!   immutable once written, so a pinned get is served from the cache as is.
//! - An unpinned get first asks the inner store for the current version
//!   (`current_version`: one indexed `SELECT MAX(version)` in `db_s3`, a
//!   small file read in `files`) and serves the cached deployment of that
//!   version when there is one; otherwise it loads the current version and
//!   caches it. So a save through any replica is seen by the next get.
//! - Saves and deletes through this wrapper drop every cached version of
//!   the function (a deleted function may be re-created with the same
//!   version numbers); a save then caches the version it wrote.
//! - Known limit: a function deleted and re-created through *another*
//!   replica reuses its version numbers, and this replica may serve the
//!   cached old content of those numbers until the entries are evicted.
//! - Known limit, `files` with several processes: a version this process
//!   cached stays loadable by pin after another process replaced it, where
//!   the store alone would answer `VersionNotAvailable`.
//! - Backend-independent (no cargo feature): it only needs the port. It
//!   passes the contract suite around the `files` and `db_s3` stores.
//! - A load that overlaps an invalidation is not cached (an epoch counter),
//!   so a get racing a delete never re-inserts the deleted function.
//! - The std mutex around the LRU is never held across an `.await`.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use faas_ports::{
    CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, NewVersion, PortError,
    SourceStore, Version, VersionItem,
};
use lru::LruCache;

type Key = (CollectionPath, FunctionName, Version);

/// A [`SourceStore`] that caches deployments of the store it wraps (see the module docs).
pub struct CachedSourceStore<S: ?Sized = dyn SourceStore> {
    inner: Arc<S>,
    cache: Mutex<State>,
}

struct State {
    lru: LruCache<Key, Deployment>,
    /// Bumped by every invalidation: a load that started before one must
    /// not put what it read into the cache (it may be a deleted function).
    epoch: u64,
}

impl<S: SourceStore + ?Sized> CachedSourceStore<S> {
    /// Wraps `inner` with a cache of at most `capacity` deployments
    /// (`LOWCODE_FAAS_FUNCTION_CACHE_SIZE`).
    pub fn new(inner: Arc<S>, capacity: NonZeroUsize) -> Self {
        Self {
            inner,
            cache: Mutex::new(State {
                lru: LruCache::new(capacity),
                epoch: 0,
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// How many deployments are cached now.
    pub fn len(&self) -> usize {
        self.lock().lru.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.lock().lru.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached deployment, or the epoch to hand to [`Self::remember`] after loading it.
    fn cached(&self, collection: &CollectionPath, name: &FunctionName, version: Version) -> Result<Deployment, u64> {
        let mut state = self.lock();
        let epoch = state.epoch;
        state
            .lru
            .get(&(collection.clone(), name.clone(), version))
            .cloned()
            .ok_or(epoch)
    }

    /// Caches a deployment loaded since `epoch`, unless an invalidation happened meanwhile.
    fn remember(&self, deployment: &Deployment, epoch: u64) {
        let key = (
            deployment.collection_path.clone(),
            deployment.name.clone(),
            deployment.version,
        );
        let mut state = self.lock();
        if state.epoch == epoch {
            state.lru.put(key, deployment.clone());
        }
    }

    /// Drops every cached version of one function; returns the new epoch.
    fn forget(&self, collection: &CollectionPath, name: &FunctionName) -> u64 {
        let mut state = self.lock();
        state.epoch = state.epoch.wrapping_add(1);
        let stale: Vec<Key> = state
            .lru
            .iter()
            .filter(|((c, n, _), _)| c == collection && n == name)
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            state.lru.pop(&key);
        }
        state.epoch
    }
}

impl<S: ?Sized> fmt::Debug for CachedSourceStore<S>
where
    S: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("CachedSourceStore")
            .field("inner", &self.inner)
            .field("cached", &state.lru.len())
            .field("capacity", &state.lru.cap())
            .finish()
    }
}

#[async_trait]
impl<S: SourceStore + ?Sized> SourceStore for CachedSourceStore<S> {
    async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError> {
        self.inner.create_collection(path, env).await
    }

    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        self.inner.list_collections().await
    }

    async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        self.inner.collection_exists(path).await
    }

    async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        self.inner.collection_env(path).await
    }

    async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        self.inner.set_collection_env(path, env).await
    }

    async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        self.inner.delete_collection(path).await
    }

    async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError> {
        // Forget before and after: whatever happened meanwhile, nothing older
        // than this save's outcome stays cached for the function.
        self.forget(&new.collection_path, &new.name);
        let saved = self.inner.save_function(new).await;
        let epoch = self.forget(&new.collection_path, &new.name);
        let saved = saved?;
        self.remember(&saved, epoch);
        Ok(saved)
    }

    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<Version>,
    ) -> Result<Deployment, PortError> {
        let wanted = match version {
            Some(pinned) => pinned,
            None => self.inner.current_version(collection, name).await?,
        };
        let epoch = match self.cached(collection, name, wanted) {
            Ok(hit) => return Ok(hit),
            Err(epoch) => epoch,
        };
        // Unpinned: load the current version (it may have moved on since
        // `current_version`; a pin on the old number could then fail in
        // stores that keep only the current version).
        let loaded = self.inner.get_function(collection, name, version).await?;
        self.remember(&loaded, epoch);
        Ok(loaded)
    }

    async fn current_version(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Version, PortError> {
        self.inner.current_version(collection, name).await
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
        self.forget(collection, name);
        let deleted = self.inner.delete_function(collection, name).await;
        self.forget(collection, name);
        deleted
    }

    async fn health(&self) -> Result<(), PortError> {
        self.inner.health().await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use faas_ports::{Language, MockSourceStore};
    use mockall::predicate::eq;

    use super::*;

    fn cp(raw: &str) -> CollectionPath {
        CollectionPath::parse(raw).unwrap()
    }

    fn name(raw: &str) -> FunctionName {
        FunctionName::parse(raw).unwrap()
    }

    fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }

    fn deployment(collection: &CollectionPath, fname: &FunctionName, version: Version) -> Deployment {
        Deployment {
            collection_path: collection.clone(),
            name: fname.clone(),
            language: Language::Javascript,
            source_code: format!("// {fname} v{version}"),
            env: EnvMap::new(),
            version,
            created_at: Utc::now(),
        }
    }

    fn cached(mock: MockSourceStore, capacity: usize) -> CachedSourceStore<MockSourceStore> {
        CachedSourceStore::new(Arc::new(mock), NonZeroUsize::new(capacity).unwrap())
    }

    #[cfg(all(feature = "fs", feature = "testkit"))]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_the_source_store_contract_around_files() {
        let dir = tempfile::tempdir().unwrap();
        let files: Arc<dyn SourceStore> = Arc::new(crate::fs::FsSourceStore::new(dir.path()).unwrap());
        let store = CachedSourceStore::new(files, NonZeroUsize::new(4).unwrap());
        crate::testkit::source_store_contract(&store, crate::testkit::ContractOptions::CURRENT_ONLY).await;
    }

    #[tokio::test]
    async fn a_second_pinned_get_is_served_from_the_cache() {
        let mut mock = MockSourceStore::new();
        mock.expect_get_function()
            .with(eq(cp("a")), eq(name("f")), eq(Some(v(2))))
            .times(1)
            .returning(|c, n, pin| Ok(deployment(c, n, pin.unwrap())));
        mock.expect_current_version().never();
        let store = cached(mock, 8);

        let first = store.get_function(&cp("a"), &name("f"), Some(v(2))).await.unwrap();
        let second = store.get_function(&cp("a"), &name("f"), Some(v(2))).await.unwrap();
        assert_eq!(first, second, "the cached deployment is the loaded one");
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn an_unpinned_get_revalidates_and_reloads_after_a_write_elsewhere() {
        let mut mock = MockSourceStore::new();
        let mut current = mockall::Sequence::new();
        // Two gets see v1, then another replica writes v2.
        mock.expect_current_version()
            .times(2)
            .in_sequence(&mut current)
            .returning(|_, _| Ok(v(1)));
        mock.expect_current_version()
            .times(1)
            .in_sequence(&mut current)
            .returning(|_, _| Ok(v(2)));
        let mut loads = mockall::Sequence::new();
        mock.expect_get_function()
            .with(eq(CollectionPath::root()), eq(name("f")), eq(None))
            .times(1)
            .in_sequence(&mut loads)
            .returning(|c, n, _| Ok(deployment(c, n, v(1))));
        mock.expect_get_function()
            .with(eq(CollectionPath::root()), eq(name("f")), eq(None))
            .times(1)
            .in_sequence(&mut loads)
            .returning(|c, n, _| Ok(deployment(c, n, v(2))));
        let store = cached(mock, 8);
        let root = CollectionPath::root();

        assert_eq!(store.get_function(&root, &name("f"), None).await.unwrap().version, v(1));
        assert_eq!(
            store.get_function(&root, &name("f"), None).await.unwrap().version,
            v(1),
            "an unchanged current version is served from the cache (one load so far)"
        );
        assert_eq!(
            store.get_function(&root, &name("f"), None).await.unwrap().version,
            v(2),
            "a newer current version is loaded"
        );
    }

    #[tokio::test]
    async fn the_capacity_bound_evicts_the_least_recently_used() {
        let mut mock = MockSourceStore::new();
        // v1 is loaded twice: it is evicted by v2 and v3 in a cache of two.
        mock.expect_get_function()
            .with(eq(CollectionPath::root()), eq(name("f")), eq(Some(v(1))))
            .times(2)
            .returning(|c, n, pin| Ok(deployment(c, n, pin.unwrap())));
        for n in [2, 3] {
            mock.expect_get_function()
                .with(eq(CollectionPath::root()), eq(name("f")), eq(Some(v(n))))
                .times(1)
                .returning(|c, n, pin| Ok(deployment(c, n, pin.unwrap())));
        }
        let store = cached(mock, 2);
        let root = CollectionPath::root();
        for n in [1, 2, 3] {
            store.get_function(&root, &name("f"), Some(v(n))).await.unwrap();
        }
        assert_eq!(store.len(), 2, "the cache never holds more than its capacity");
        store.get_function(&root, &name("f"), Some(v(3))).await.unwrap();
        store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();
    }

    #[tokio::test]
    async fn a_load_that_overlaps_a_delete_is_not_cached() {
        let (loading_tx, loading_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let mut mock = MockSourceStore::new();
        mock.expect_get_function().times(2).returning(move |c, n, pin| {
            // The first load waits until the delete went through.
            if loading_tx.send(()).is_ok() {
                release_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(5))
                    .ok();
            }
            Ok(deployment(c, n, pin.unwrap()))
        });
        mock.expect_delete_function().times(1).returning(|_, _| Ok(()));
        let store = Arc::new(cached(mock, 8));
        let root = CollectionPath::root();

        let loader = {
            let store = Arc::clone(&store);
            let root = root.clone();
            tokio::task::spawn_blocking(move || {
                tokio::runtime::Handle::current()
                    .block_on(async { store.get_function(&root, &name("f"), Some(v(1))).await.unwrap() })
            })
        };
        tokio::task::spawn_blocking(move || loading_rx.recv().unwrap())
            .await
            .unwrap();
        store.delete_function(&root, &name("f")).await.unwrap();
        release_tx.send(()).unwrap();
        loader.await.unwrap();
        assert!(store.is_empty(), "what a load read before a delete is not cached");
        // So the next get loads again (the second expected load).
        store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();
    }

    #[tokio::test]
    async fn saves_and_deletes_invalidate_the_function() {
        let mut mock = MockSourceStore::new();
        mock.expect_get_function()
            .with(eq(CollectionPath::root()), eq(name("f")), eq(Some(v(1))))
            .times(2)
            .returning(|c, n, pin| Ok(deployment(c, n, pin.unwrap())));
        mock.expect_get_function()
            .with(eq(CollectionPath::root()), eq(name("g")), eq(Some(v(1))))
            .times(1)
            .returning(|c, n, pin| Ok(deployment(c, n, pin.unwrap())));
        mock.expect_delete_function().times(1).returning(|_, _| Ok(()));
        mock.expect_save_function().times(1).returning(|new| {
            Ok(Deployment {
                source_code: new.source_code.clone(),
                ..deployment(&new.collection_path, &new.name, v(1))
            })
        });
        let store = cached(mock, 8);
        let root = CollectionPath::root();

        store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();
        store.get_function(&root, &name("g"), Some(v(1))).await.unwrap();
        store.delete_function(&root, &name("f")).await.unwrap();
        assert_eq!(store.len(), 1, "a delete drops the function's versions, not others'");
        // Loaded again (second expected load): the delete invalidated it.
        store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();

        // Re-created at v1 with new content: the pin must not see the old entry.
        let saved = store
            .save_function(&NewVersion {
                collection_path: root.clone(),
                name: name("f"),
                language: Language::Javascript,
                source_code: "new".into(),
                env: EnvMap::new(),
            })
            .await
            .unwrap();
        let got = store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();
        assert_eq!(
            got.source_code, "new",
            "a save replaces what was cached for the function"
        );
        assert_eq!(got, saved, "a save caches the version it wrote");
    }
}
