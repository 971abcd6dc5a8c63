//! The function cache (docs/api.md): a [`SourceStore`] decorator that keeps
//! recently loaded [`Deployment`]s in a bounded LRU.
//!
//! Invariants and decisions:
//! - Entries are keyed by (collection, name, version) and remember the
//!   revision token they were loaded under when they were the current version.
//! - Every get first asks the inner store for the current revision
//!   (`current_revision`: one indexed query in `db_s3`, a few `stat`s in
//!   `files`). A get of the current version (unpinned, or pinned to it) is
//!   served from the cache only when the cached entry has the same token;
//!   otherwise it is loaded and cached with the new token. So a save through
//!   any replica, a delete and re-create with the same version number, or a
//!   hand edit of the files is seen by the next get.
//! - Older pinned versions: over a store whose [`SourceStore::history`] is
//!   `Full` (`db_s3`) they are immutable and cached as is; over one that
//!   keeps only the current version (`files`) such a get goes to the store,
//!   which answers `VersionNotAvailable`. The cache keeps the history of
//!   the store it wraps.
//! - When the current revision shows the function went back (a lower current
//!   version than one cached, or the same number with another token), every
//!   cached version of the function is dropped: it was deleted and re-created.
//!   Known limit: a function deleted and re-created through another replica
//!   *and* saved past its old highest version before this replica looks again
//!   may have old content served for an older pinned number until eviction.
//! - Saves and deletes through this wrapper drop every cached version of
//!   the function; a save then caches the version it wrote.
//! - A load that overlaps an invalidation is not cached (an epoch counter),
//!   so a get racing a delete never re-inserts the deleted function.
//! - The std mutex around the LRU is never held across an `.await`.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use faas_ports::{
    CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, NewVersion, PortError, Revision,
    SourceStore, Version, VersionHistory, VersionItem,
};
use lru::LruCache;

type Key = (CollectionPath, FunctionName, Version);

/// A [`SourceStore`] that caches deployments of the store it wraps (see the module docs).
pub struct CachedSourceStore<S: ?Sized = dyn SourceStore> {
    inner: Arc<S>,
    cache: Mutex<State>,
    history: VersionHistory,
}

#[derive(Clone)]
struct Entry {
    deployment: Deployment,
    /// The revision token it was loaded under as the current version.
    token: Option<String>,
}

struct State {
    lru: LruCache<Key, Entry>,
    /// Bumped by every invalidation: a load that started before one must
    /// not put what it read into the cache (it may be a deleted function).
    epoch: u64,
}

impl<S: SourceStore + ?Sized> CachedSourceStore<S> {
    /// Wraps `inner` with a cache of at most `capacity` deployments
    /// (`LOWCODE_FAAS_FUNCTION_CACHE_SIZE`).
    pub fn new(inner: Arc<S>, capacity: NonZeroUsize) -> Self {
        Self {
            history: inner.history(),
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

    /// The cached entry, or the epoch to hand to [`Self::remember`] after loading it.
    fn cached(&self, collection: &CollectionPath, name: &FunctionName, version: Version) -> Result<Entry, u64> {
        let mut state = self.lock();
        let epoch = state.epoch;
        state
            .lru
            .get(&(collection.clone(), name.clone(), version))
            .cloned()
            .ok_or(epoch)
    }

    /// Caches a deployment loaded since `epoch`, unless an invalidation happened meanwhile.
    fn remember(&self, deployment: &Deployment, token: Option<String>, epoch: u64) {
        let key = (
            deployment.collection_path.clone(),
            deployment.name.clone(),
            deployment.version,
        );
        let mut state = self.lock();
        if state.epoch == epoch {
            state.lru.put(
                key,
                Entry {
                    deployment: deployment.clone(),
                    token,
                },
            );
        }
    }

    /// Drops the function's entries when `current` shows it went back: a
    /// cached version above the current one, or the current number cached
    /// under another token (deleted and re-created elsewhere).
    fn reconcile(&self, collection: &CollectionPath, name: &FunctionName, current: &Revision) {
        let went_back = {
            let state = self.lock();
            state.lru.iter().any(|((c, n, version), entry)| {
                c == collection
                    && n == name
                    && (*version > current.version
                        || (*version == current.version && entry.token.as_ref().is_some_and(|t| *t != current.token)))
            })
        };
        if went_back {
            self.forget(collection, name);
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
        // The token of what was just written, if nothing newer came since.
        let token = match self.inner.current_revision(&new.collection_path, &new.name).await {
            Ok(current) if current.version == saved.version => Some(current.token),
            _ => None,
        };
        self.remember(&saved, token, epoch);
        Ok(saved)
    }

    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<Version>,
    ) -> Result<Deployment, PortError> {
        let current = self.inner.current_revision(collection, name).await?;
        self.reconcile(collection, name, &current);
        let wanted = version.unwrap_or(current.version);
        if wanted != current.version && self.history == VersionHistory::CurrentOnly {
            // Only the current version exists there: let the store answer.
            return self.inner.get_function(collection, name, version).await;
        }
        let epoch = match self.cached(collection, name, wanted) {
            Ok(hit) if wanted != current.version => return Ok(hit.deployment),
            Ok(hit) if hit.token.as_deref() == Some(current.token.as_str()) => return Ok(hit.deployment),
            Ok(_) => self.lock().epoch,
            Err(epoch) => epoch,
        };
        // Load what was asked (an unpinned get loads the current version: it
        // may have moved on since `current_revision`).
        let loaded = self.inner.get_function(collection, name, version).await?;
        let token = (loaded.version == current.version).then_some(current.token);
        self.remember(&loaded, token, epoch);
        Ok(loaded)
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
        self.forget(collection, name);
        let deleted = self.inner.delete_function(collection, name).await;
        self.forget(collection, name);
        deleted
    }

    async fn health(&self) -> Result<(), PortError> {
        self.inner.health().await
    }

    fn history(&self) -> VersionHistory {
        self.history
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

    /// The cache over `mock`, a store that keeps only the current version.
    fn cached(mock: MockSourceStore, capacity: usize) -> CachedSourceStore<MockSourceStore> {
        with_history(mock, capacity, VersionHistory::CurrentOnly)
    }

    fn with_history(
        mut mock: MockSourceStore,
        capacity: usize,
        history: VersionHistory,
    ) -> CachedSourceStore<MockSourceStore> {
        mock.expect_history().return_const(history);
        CachedSourceStore::new(Arc::new(mock), NonZeroUsize::new(capacity).unwrap())
    }

    #[cfg(feature = "fs")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_the_source_store_contract_around_files() {
        let dir = tempfile::tempdir().unwrap();
        let files: Arc<dyn SourceStore> = Arc::new(crate::fs::FsSourceStore::new(dir.path()).unwrap());
        let store = CachedSourceStore::new(files, NonZeroUsize::new(4).unwrap());
        crate::testkit::source_store_contract(&store).await;
    }

    fn rev(n: u64, token: &str) -> Revision {
        Revision {
            version: v(n),
            token: token.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_second_get_of_an_unchanged_current_version_is_served_from_the_cache() {
        let mut mock = MockSourceStore::new();
        mock.expect_current_revision()
            .times(2)
            .returning(|_, _| Ok(rev(2, "t")));
        mock.expect_get_function()
            .with(eq(cp("a")), eq(name("f")), eq(Some(v(2))))
            .times(1)
            .returning(|c, n, pin| Ok(deployment(c, n, pin.unwrap())));
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
        mock.expect_current_revision()
            .times(2)
            .in_sequence(&mut current)
            .returning(|_, _| Ok(rev(1, "a")));
        mock.expect_current_revision()
            .times(1)
            .in_sequence(&mut current)
            .returning(|_, _| Ok(rev(2, "b")));
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
    async fn a_delete_and_re_create_elsewhere_is_seen_through_the_token() {
        let mut mock = MockSourceStore::new();
        let mut current = mockall::Sequence::new();
        mock.expect_current_revision()
            .times(1)
            .in_sequence(&mut current)
            .returning(|_, _| Ok(rev(1, "old")));
        // Another replica deleted and re-created the function: v1 again, another token.
        mock.expect_current_revision()
            .times(1)
            .in_sequence(&mut current)
            .returning(|_, _| Ok(rev(1, "new")));
        let mut loads = mockall::Sequence::new();
        mock.expect_get_function()
            .times(1)
            .in_sequence(&mut loads)
            .returning(|c, n, _| Ok(deployment(c, n, v(1))));
        mock.expect_get_function()
            .times(1)
            .in_sequence(&mut loads)
            .returning(|c, n, _| {
                Ok(Deployment {
                    source_code: "re-created".into(),
                    ..deployment(c, n, v(1))
                })
            });
        let store = cached(mock, 8);
        let root = CollectionPath::root();
        store.get_function(&root, &name("f"), None).await.unwrap();
        let again = store.get_function(&root, &name("f"), None).await.unwrap();
        assert_eq!(again.source_code, "re-created", "the old v1 is not served");
    }

    #[tokio::test]
    async fn older_pins_are_cached_only_over_a_store_with_history() {
        // With history: v1 is immutable, loaded once.
        let mut mock = MockSourceStore::new();
        mock.expect_current_revision()
            .times(2)
            .returning(|_, _| Ok(rev(3, "t3")));
        mock.expect_get_function()
            .with(eq(CollectionPath::root()), eq(name("f")), eq(Some(v(1))))
            .times(1)
            .returning(|c, n, pin| Ok(deployment(c, n, pin.unwrap())));
        let store = with_history(mock, 8, VersionHistory::Full);
        let root = CollectionPath::root();
        store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();
        store.get_function(&root, &name("f"), Some(v(1))).await.unwrap();

        // Without history: the store answers every older pin.
        let mut mock = MockSourceStore::new();
        mock.expect_current_revision()
            .times(2)
            .returning(|_, _| Ok(rev(3, "t3")));
        mock.expect_get_function()
            .with(eq(CollectionPath::root()), eq(name("f")), eq(Some(v(1))))
            .times(2)
            .returning(|c, n, pin| {
                Err(PortError::VersionNotAvailable {
                    function: faas_ports::function_id(c, n),
                    version: pin.unwrap().get(),
                    current: 3,
                })
            });
        let store = cached(mock, 8);
        for _ in 0..2 {
            let err = store.get_function(&root, &name("f"), Some(v(1))).await.unwrap_err();
            assert_eq!(err.code(), "VERSION_NOT_AVAILABLE");
        }
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
        mock.expect_current_revision().returning(|_, _| Ok(rev(3, "t3")));
        let store = with_history(mock, 2, VersionHistory::Full);
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
        mock.expect_current_revision().returning(|_, _| Ok(rev(2, "t2")));
        let store = Arc::new(with_history(mock, 8, VersionHistory::Full));
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
        mock.expect_current_revision().returning(|_, _| Ok(rev(1, "t1")));
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
