//! `files` storage: a [`SourceStore`] over the data-directory layout of docs/api.md.
//!
//! Layout below the data directory (the earlier Go implementation's layout,
//! read and written unchanged):
//!
//! ```text
//! collections/__root__/collection.env.json         root collection env (optional)
//! collections/__root__/functions/{name}.mjs        root function source
//! collections/__root__/functions/{name}.env.json   its env (optional; absent = empty)
//! collections/__root__/functions/{name}.meta.json  {"version":N} (optional; absent = 1)
//! collections/{s1}/…/{sN}/collection.env.json      collection env (optional)
//! collections/{s1}/…/{sN}/functions/{name}.*       as for the root
//! functions/{name}.mjs, functions/{name}.env.json  legacy root functions (version 1)
//! .locks/collections/{s1}/…/{sN}.lock              collection lock files (ours only)
//! ```
//!
//! Invariants and decisions:
//! - A collection exists when its directory exists; the root always exists
//!   and `collections/__root__` is created on the first write. Creating a
//!   collection also creates its `functions/` directory (and those of new
//!   ancestors), as the Go implementation did, so a tree written here still
//!   works with it. `collection.env.json` is written only for a non-empty
//!   env and removed when an env is set to `{}`; the same holds for
//!   `{name}.env.json`.
//! - Only the current version is kept: `list_versions` returns one row and a
//!   pin on any other version is `VersionNotAvailable`.
//! - Legacy `functions/{name}.mjs` files are root functions at version 1; a
//!   function of the new layout with the same name wins. Saving a legacy
//!   function writes the new layout at version 2 and leaves the legacy file
//!   (it is shadowed from then on); deleting a root function removes both.
//! - Saves of one function are serialised twice: an in-process async mutex
//!   (so waiting saves do not occupy blocking threads) and an advisory lock
//!   on `functions/{name}.lock` (so two processes on one data directory never
//!   lose or duplicate a version). Lock files go with what they lock: a
//!   function's when, under its exclusive lock, the function turns out not
//!   to exist (deleted, never saved, a failed first save); a collection's
//!   (and the lock directory of its children) when it is deleted. Only the
//!   exclusive holder removes a lock file, after the data and before it
//!   unlocks; whoever then gets the lock of the removed file sees that it
//!   is no longer the file at its path (device + inode) and opens the path
//!   again (`locks`), so two callers never hold one lock through two files.
//! - A collection's deletion and every write into it are mutually exclusive,
//!   in-process and across processes sharing the data directory, through an
//!   advisory lock on `.locks/collections/{path}.lock`: saves and deletes of
//!   its functions and env writes take it shared, creating a collection
//!   takes it shared for every collection of its lineage (top-down), and
//!   `delete_collection` takes it exclusive, then checks emptiness. The lock
//!   files live outside the collection tree, so deleting a collection never
//!   deletes a lock someone waits on, and they never show up as collections
//!   or functions; they are removed with their collection (a call naming
//!   a missing collection leaves none). A save that answered `Ok` is therefore never lost
//!   to a concurrent delete: the delete either ran first (the save answers
//!   `CollectionNotFound`) or sees the function (`CollectionNotEmpty`).
//! - Deleting a collection moves its directory in one rename into a hidden
//!   tombstone next to it (`.{segment}.XXXXXX.deleted`, skipped like every
//!   dot-name), then removes the tombstone: the collection is either whole
//!   or gone, never half-deleted. A tombstone that could not be removed is
//!   logged and stays hidden until its parent goes.
//! - Every file is written atomically: a temp file (`.{file}.XXXXXX.tmp`,
//!   never ending in `.mjs`) in the same directory, fsync, rename. A save
//!   stages the source, env and meta first and renames them in that order,
//!   then fsyncs the directory. Readers of a whole function take a shared
//!   lock on the lock file, so they never see the source of one version with
//!   the number of another; without a lock file (no function, or one placed
//!   by hand) a read is repeated until two agree, or under the lock once one
//!   appears.
//! - Data written by older implementations is read tolerantly: missing env
//!   and meta files, env entries that break today's rules (left out with a
//!   warning naming the keys, and reported by the API as
//!   `ignored_env_keys`), unrelated files and directories (ignored),
//!   function names the Go version could store (`my.func.mjs`: listed and
//!   usable, see [`FunctionName::parse_stored`]), names no version could
//!   store and invalid collection segments (skipped with a warning). A file that is not JSON at all is
//!   `Internal` with its path.
//! - Every file is read with a byte cap (`layout`: sources the larger of
//!   [`MIN_SOURCE_FILE_CAP`] and [`FsSourceStore::with_max_source_bytes`],
//!   env files 8 MiB, meta files 4 KiB): a larger file, placed by hand, is
//!   `Internal` naming it and the cap, never read past the cap.
//! - Paths are built only from validated [`CollectionPath`] segments and
//!   [`FunctionName`]s, never from raw strings.
//! - All file work runs on `spawn_blocking`; no std lock is held across an
//!   `.await`.
//! - Every call is bounded (docs/api.md, [`FsSourceStore::with_timeout`], 10 s by
//!   default): past the bound it answers `Unavailable { component: Storage }`
//!   ("files storage did not answer within N ms"), whatever it waits on (the
//!   in-process lock, the blocking pool, a file lock held by another process,
//!   a slow disk). File locks are taken with `try_lock` polled every 10 ms up
//!   to the deadline, so the blocking thread stops soon after too. A write
//!   that failed this way never publishes later: each write has a commit
//!   point right before its first visible change (the first rename of a
//!   save, after everything is staged), where it stops if the deadline
//!   passed or the caller gave up; the caller and the work decide through
//!   one atomic flag, so exactly one of "abandoned before publishing" and
//!   "publishing" wins. The remaining window: a write that passed its commit
//!   point just before the deadline and is still renaming and fsyncing when
//!   the bound passes finishes after the caller got `Unavailable`; that
//!   error then says the change "may still be applied". A file operation
//!   that hangs in the kernel (a dead network mount) keeps its blocking
//!   thread until it returns; the caller is answered in time regardless.

mod atomic;
pub(crate) mod layout;
mod locks;
mod store;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use faas_ports::{
    CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, NewVersion, PortError, Revision,
    SourceStore, VersionItem,
};

use tokio::sync::Mutex as AsyncMutex;

pub use self::layout::MIN_SOURCE_FILE_CAP;
use self::locks::{Call, LockKey, SaveGuard};
use crate::AdapterError;

/// Default bound of one storage call (`LOWCODE_FAAS_STORAGE_TIMEOUT_MS`, docs/api.md).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`SourceStore`] over the `files` layout of docs/api.md (see the module docs).
#[derive(Debug, Clone)]
pub struct FsSourceStore {
    inner: Arc<Inner>,
    timeout: Duration,
}

/// A temp file (`.<target>.<random>.tmp`) older than this was left by a
/// write that never finished (a crash, a `kill -9`): live writes take
/// seconds at most.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// Directories the start-up sweep looks into at most (a bound on a huge tree).
const SWEEP_MAX_DIRS: usize = 100_000;

/// Removes the temp files of interrupted writes (named `.<target>.<random>.tmp`
/// by the atomic writer) older than `min_age` under `data_dir`; returns how
/// many went. Problems are logged and skipped: the sweep never fails a start.
pub fn sweep_stale_temp_files(data_dir: &Path, min_age: Duration) -> usize {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    let mut dirs = vec![data_dir.to_path_buf()];
    let mut seen = 0;
    while let Some(dir) = dirs.pop() {
        seen += 1;
        if seen > SWEEP_MAX_DIRS {
            tracing::warn!(data_dir = %data_dir.display(), "The temp-file sweep stopped at its directory bound.");
            break;
        }
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() && name.starts_with('.') && name.ends_with(".tmp") {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age >= min_age);
                if old {
                    match fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(e) => {
                            tracing::warn!(path = %entry.path().display(), error = %e, "Cannot remove a stale temp file.")
                        }
                    }
                }
            }
        }
    }
    removed
}

impl FsSourceStore {
    /// A store rooted at `data_dir`, which is created when missing; temp
    /// files of interrupted writes older than [`STALE_TEMP_AGE`] are removed.
    ///
    /// Fails when `data_dir` exists and is not a directory, or cannot be
    /// created. Blocking: call it at start-up.
    pub fn new(data_dir: impl Into<PathBuf>) -> Result<Self, AdapterError> {
        let data_dir = data_dir.into();
        match fs::metadata(&data_dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(AdapterError::Config(format!(
                    "data directory {} exists and is not a directory",
                    data_dir.display()
                )))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::create_dir_all(&data_dir).map_err(|source| AdapterError::Io {
                    context: format!("creating data directory {}", data_dir.display()),
                    source,
                })?;
            }
            Err(source) => {
                return Err(AdapterError::Io {
                    context: format!("reading data directory {}", data_dir.display()),
                    source,
                })
            }
        }
        let removed = sweep_stale_temp_files(&data_dir, STALE_TEMP_AGE);
        if removed > 0 {
            tracing::info!(removed, data_dir = %data_dir.display(), "Removed temp files left by interrupted writes.");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir,
                save_locks: Mutex::new(HashMap::new()),
                max_source_file_bytes: AtomicU64::new(MIN_SOURCE_FILE_CAP),
            }),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Bounds every call of this store by `timeout` (default
    /// [`DEFAULT_TIMEOUT`]): past it a call answers `Unavailable { component:
    /// Storage }` and its file work stops at its next lock wait or before
    /// it publishes anything (see the module docs).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Source files larger than the larger of `limit` and
    /// [`MIN_SOURCE_FILE_CAP`] (64 MiB) are not read: such a file (placed by
    /// hand; saves keep to `LOWCODE_FAAS_MAX_SOURCE_BYTES`) answers
    /// `Internal` naming it. Pass the configured source limit, so that a
    /// source saved under it always reads back. Applies to every clone of
    /// this store.
    #[must_use]
    pub fn with_max_source_bytes(self, limit: u64) -> Self {
        self.inner
            .max_source_file_bytes
            .store(limit.max(MIN_SOURCE_FILE_CAP), std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// The data directory this store is rooted at.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Runs blocking file work on tokio's blocking pool, within the bound.
    async fn blocking<T, F>(&self, work: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Call) -> Result<T, PortError> + Send + 'static,
    {
        self.bounded(None, work).await
    }

    /// Runs blocking file work within the bound of one call, first taking
    /// the in-process lock of `function` when given (its wait counts too).
    /// Past the bound the caller gets `Unavailable` at once and the work is
    /// told to stop (see [`Call`]).
    async fn bounded<T, F>(&self, function: Option<(&CollectionPath, &FunctionName)>, work: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Call) -> Result<T, PortError> + Send + 'static,
    {
        let call = Call::new(self.timeout);
        let work_call = call.clone();
        let inner = Arc::clone(&self.inner);
        let run = async move {
            let guard = match function {
                Some((collection, name)) => Some(self.lock_function(collection, name).await),
                None => None,
            };
            tokio::task::spawn_blocking(move || {
                // Held until the file work has really finished.
                let _guard = guard;
                work_call.check()?;
                work(&inner, &work_call)
            })
            .await
            .map_err(|e| PortError::internal("files storage task failed", e))?
        };
        match tokio::time::timeout_at(tokio::time::Instant::from_std(call.deadline), run).await {
            Ok(result) => result,
            Err(_elapsed) => Err(call.abandon()),
        }
    }

    /// Waits for the in-process lock of one function.
    async fn lock_function(&self, collection: &CollectionPath, name: &FunctionName) -> SaveGuard {
        let key = (collection.clone(), name.clone());
        let lock = {
            let mut locks = self.inner.save_locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(key.clone()).or_default())
        };
        // Built before the wait, so a cancelled wait still prunes the map.
        let mut guard = SaveGuard {
            inner: Arc::clone(&self.inner),
            key,
            lock: Arc::clone(&lock),
            held: None,
        };
        guard.held = Some(lock.lock_owned().await);
        guard
    }
}

#[derive(Debug)]
struct Inner {
    data_dir: PathBuf,
    /// One async mutex per function being saved or deleted in this process.
    save_locks: Mutex<HashMap<LockKey, Arc<AsyncMutex<()>>>>,
    /// Source files larger than this are not read.
    max_source_file_bytes: AtomicU64,
}

impl Inner {
    // ---- errors ----

    /// The one mapping of I/O errors to [`PortError`]s. Callers handle the
    /// `NotFound` cases that have a meaning (missing collection, function)
    /// before they get here.
    fn map_error(&self, op: &str, path: &Path, err: io::Error) -> PortError {
        // The message does not repeat `err`: it is the source.
        let message = format!("{op} {} failed", self.rel(path));
        match err.kind() {
            ErrorKind::InvalidData | ErrorKind::UnexpectedEof => PortError::internal(message, err),
            _ => PortError::storage_unavailable(message, err),
        }
    }

    fn corrupt(&self, path: &Path, err: impl Into<faas_ports::BoxError>) -> PortError {
        PortError::internal(format!("{} holds invalid JSON", self.rel(path)), err)
    }

    fn collection_not_found(path: &CollectionPath) -> PortError {
        PortError::CollectionNotFound(path.to_string())
    }
}

#[async_trait]
impl SourceStore for FsSourceStore {
    async fn create_collection(&self, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError> {
        let (path, env) = (path.clone(), env.clone());
        self.blocking(move |s, call| s.create_collection(call, &path, &env))
            .await
    }

    async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        self.blocking(|s, _| s.list_collections()).await
    }

    async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        let path = path.clone();
        self.blocking(move |s, _| s.collection_exists(&path)).await
    }

    async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        let path = path.clone();
        self.blocking(move |s, _| s.collection_env(&path)).await
    }

    async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        let (path, env) = (path.clone(), env.clone());
        self.blocking(move |s, call| s.set_collection_env(call, &path, &env))
            .await
    }

    async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        let path = path.clone();
        self.blocking(move |s, call| s.delete_collection(call, &path)).await
    }

    async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError> {
        let owned = new.clone();
        self.bounded(Some((&new.collection_path, &new.name)), move |s, call| {
            s.save_function(call, &owned)
        })
        .await
    }

    async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<faas_ports::Version>,
    ) -> Result<Deployment, PortError> {
        let (collection, name) = (collection.clone(), name.clone());
        self.blocking(move |s, call| s.get_function(call, &collection, &name, version))
            .await
    }

    async fn current_revision(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Revision, PortError> {
        let (collection, name) = (collection.clone(), name.clone());
        self.blocking(move |s, _| s.current_revision(&collection, &name)).await
    }

    async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
        let collection = collection.clone();
        self.blocking(move |s, _| s.list_functions(&collection)).await
    }

    async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, PortError> {
        let (collection, name) = (collection.clone(), name.clone());
        self.blocking(move |s, _| {
            let found = s.find_required(&collection, &name)?;
            Ok(vec![VersionItem {
                version: found.version,
                created_at: found.modified,
            }])
        })
        .await
    }

    async fn delete_function(&self, collection: &CollectionPath, name: &FunctionName) -> Result<(), PortError> {
        let (owned_collection, owned_name) = (collection.clone(), name.clone());
        self.bounded(Some((collection, name)), move |s, call| {
            s.delete_function(call, &owned_collection, &owned_name)
        })
        .await
    }

    async fn health(&self) -> Result<(), PortError> {
        self.blocking(|s, _| s.health()).await
    }

    fn history(&self) -> faas_ports::VersionHistory {
        faas_ports::VersionHistory::CurrentOnly
    }
}
