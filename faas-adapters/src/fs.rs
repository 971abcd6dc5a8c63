//! `files` storage: a [`SourceStore`] over the data-directory layout of SPEC §7.
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
//!   lose or duplicate a version). Lock files are never deleted by
//!   `delete_function` (deleting a lock file others wait on breaks the lock);
//!   they are not functions and disappear with their collection.
//! - A collection's deletion and every write into it are mutually exclusive,
//!   in-process and across processes sharing the data directory, through an
//!   advisory lock on `.locks/collections/{path}.lock`: saves and deletes of
//!   its functions and env writes take it shared, creating a collection
//!   takes it shared for every collection of its lineage (top-down), and
//!   `delete_collection` takes it exclusive, then checks emptiness. The lock
//!   files live outside the collection tree, so deleting a collection never
//!   deletes a lock someone waits on, and they never show up as collections
//!   or functions; they are never deleted (one empty file per collection
//!   path ever created; a call naming a missing collection creates none). A save that answered `Ok` is therefore never lost
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
//!   the number of another.
//! - Data written by older implementations is read tolerantly: missing env
//!   and meta files, env entries that break today's rules (dropped with a
//!   warning naming the keys), unrelated files and directories (ignored),
//!   names that are not valid function names or collection segments
//!   (skipped with a warning). A file that is not JSON at all is
//!   `Internal` with its path.
//! - Paths are built only from validated [`CollectionPath`] segments and
//!   [`FunctionName`]s, never from raw strings.
//! - All file work runs on `spawn_blocking`; no std lock is held across an
//!   `.await`.
//! - Every call is bounded (SPEC §7, [`FsSourceStore::with_timeout`], 10 s by
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

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use faas_ports::{
    function_id, CollectionInfo, CollectionPath, Component, Deployment, EnvMap, FunctionName, FunctionSummary,
    Language, NewVersion, PortError, Revision, SourceStore, Version, VersionItem,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::AdapterError;

/// Directory of every collection, below the data directory.
const COLLECTIONS_DIR: &str = "collections";
/// Directory of the root collection, below `collections/`.
const ROOT_DIR: &str = "__root__";
/// Directory of a collection's functions (and of legacy root functions).
const FUNCTIONS_DIR: &str = "functions";
/// A collection's env file.
const COLLECTION_ENV_FILE: &str = "collection.env.json";
/// Extension of a function source: only files ending so are functions.
const SOURCE_EXT: &str = ".mjs";
/// Extension of a function env file.
const ENV_EXT: &str = ".env.json";
/// Extension of a function meta file.
const META_EXT: &str = ".meta.json";
/// Extension of a function's or collection's advisory lock file.
const LOCK_EXT: &str = ".lock";
/// Directory of the collection lock files, below the data directory.
const LOCKS_DIR: &str = ".locks";
/// Suffix of the hidden directory a deleted collection is moved into.
const TOMBSTONE_SUFFIX: &str = ".deleted";
/// Default bound of one storage call (`LOWCODE_FAAS_STORAGE_TIMEOUT_MS`, SPEC §7).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two attempts at a contended file lock.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// A [`SourceStore`] over the `files` layout of SPEC §7 (see the module docs).
#[derive(Debug, Clone)]
pub struct FsSourceStore {
    inner: Arc<Inner>,
    timeout: Duration,
}

impl FsSourceStore {
    /// A store rooted at `data_dir`, which is created when missing.
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
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir,
                save_locks: Mutex::new(HashMap::new()),
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

type LockKey = (CollectionPath, FunctionName);

/// [`Call`] state: the work has not published anything yet.
const PENDING: u8 = 0;
/// [`Call`] state: the work passed its commit point and is publishing.
const COMMITTING: u8 = 1;
/// [`Call`] state: the caller gave up; the work must not publish.
const ABANDONED: u8 = 2;

/// The bound of one call, shared by its async side and its blocking work.
///
/// The two sides agree through one atomic state, so a write is either
/// abandoned before it publishes anything or was already publishing when
/// the caller gave up; never "answered as failed, published later" (apart
/// from that last window, which the error message names).
#[derive(Debug, Clone)]
struct Call {
    deadline: Instant,
    timeout: Duration,
    state: Arc<AtomicU8>,
}

impl Call {
    fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        // A bound too large for the clock is no bound (a year is plenty).
        let deadline = now
            .checked_add(timeout)
            .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
            .unwrap_or(now);
        Self {
            deadline,
            timeout,
            state: Arc::new(AtomicU8::new(PENDING)),
        }
    }

    fn timed_out(&self) -> PortError {
        PortError::Unavailable {
            component: Component::Storage,
            message: format!("files storage did not answer within {} ms", self.timeout.as_millis()),
            source: None,
        }
    }

    /// `Unavailable` once the deadline passed or the caller gave up.
    fn check(&self) -> Result<(), PortError> {
        if self.state.load(Ordering::Acquire) == ABANDONED || Instant::now() >= self.deadline {
            Err(self.timed_out())
        } else {
            Ok(())
        }
    }

    /// The point of no return of a write, called right before its first
    /// visible change: fails when the deadline passed or the caller gave
    /// up, else marks the call as publishing (which the caller sees if it
    /// gives up now). Calling it again while publishing is fine.
    fn commit_point(&self) -> Result<(), PortError> {
        if Instant::now() >= self.deadline {
            return Err(self.timed_out());
        }
        match self
            .state
            .compare_exchange(PENDING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(COMMITTING) => Ok(()),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// The caller gives up (the bound passed): from now on the work stops
    /// at its next check and never passes its commit point.
    fn abandon(&self) -> PortError {
        match self
            .state
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
        {
            Err(COMMITTING) => PortError::Unavailable {
                component: Component::Storage,
                message: format!(
                    "files storage did not answer within {} ms; the change was already being written and may still be applied",
                    self.timeout.as_millis()
                ),
                source: None,
            },
            _ => self.timed_out(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    data_dir: PathBuf,
    /// One async mutex per function being saved or deleted in this process.
    save_locks: Mutex<HashMap<LockKey, Arc<AsyncMutex<()>>>>,
}

/// Holds the in-process lock of one function; removes the map entry when
/// nobody else uses it. Moved into the blocking task so the lock is held
/// until the file work has really finished, even if the caller is dropped.
struct SaveGuard {
    inner: Arc<Inner>,
    key: LockKey,
    lock: Arc<AsyncMutex<()>>,
    held: Option<OwnedMutexGuard<()>>,
}

impl Drop for SaveGuard {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut locks = self.inner.save_locks.lock().unwrap_or_else(PoisonError::into_inner);
        // Clones are only made under this lock: 2 = the map's and ours.
        if Arc::strong_count(&self.lock) == 2 && locks.get(&self.key).is_some_and(|l| Arc::ptr_eq(l, &self.lock)) {
            locks.remove(&self.key);
        }
    }
}

/// The file locks of a write to one function (released on drop, function first).
#[derive(Debug)]
struct WriteLocks {
    _function: File,
    _collection: Option<File>,
}

/// How [`Inner::wait_lock`] locks a file.
#[derive(Debug, Clone, Copy)]
enum LockMode {
    Shared,
    Exclusive,
}

/// Content of `{name}.meta.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    version: u64,
}

/// Where the current version of a function lives.
#[derive(Debug)]
struct Found {
    source: PathBuf,
    env: PathBuf,
    version: Version,
    modified: DateTime<Utc>,
}

/// Permissions of a written file (unix only), as the Go implementation used.
#[derive(Debug, Clone, Copy)]
enum Visibility {
    /// Sources and meta: 0644.
    Public,
    /// Env files, which may hold secrets: 0600.
    Private,
}

impl Inner {
    // ---- paths (built only from validated names) ----

    fn rel<'a>(&self, path: &'a Path) -> std::path::Display<'a> {
        path.strip_prefix(&self.data_dir).unwrap_or(path).display()
    }

    fn collections_dir(&self) -> PathBuf {
        self.data_dir.join(COLLECTIONS_DIR)
    }

    fn collection_dir(&self, path: &CollectionPath) -> PathBuf {
        let mut dir = self.collections_dir();
        if path.is_root() {
            dir.push(ROOT_DIR);
        } else {
            dir.extend(path.segments());
        }
        dir
    }

    fn functions_dir(&self, path: &CollectionPath) -> PathBuf {
        self.collection_dir(path).join(FUNCTIONS_DIR)
    }

    fn function_file(&self, path: &CollectionPath, name: &FunctionName, ext: &str) -> PathBuf {
        self.functions_dir(path).join(format!("{name}{ext}"))
    }

    fn legacy_dir(&self) -> PathBuf {
        self.data_dir.join(FUNCTIONS_DIR)
    }

    fn legacy_file(&self, name: &FunctionName, ext: &str) -> PathBuf {
        self.legacy_dir().join(format!("{name}{ext}"))
    }

    fn collection_env_file(&self, path: &CollectionPath) -> PathBuf {
        self.collection_dir(path).join(COLLECTION_ENV_FILE)
    }

    /// `.locks/collections/{s1}/…/{sN}.lock`: outside the collection tree,
    /// so deleting a collection never deletes a lock someone waits on.
    /// Segments never contain a dot, so `{s}.lock` and the directory `{s}/`
    /// of its children never clash.
    fn collection_lock_file(&self, path: &CollectionPath) -> PathBuf {
        let mut file = self.data_dir.join(LOCKS_DIR).join(COLLECTIONS_DIR);
        let segments: Vec<&str> = path.segments().collect();
        if let Some((last, parents)) = segments.split_last() {
            file.extend(parents);
            file.push(format!("{last}{LOCK_EXT}"));
        }
        file
    }

    // ---- errors ----

    /// The one mapping of I/O errors to [`PortError`]s. Callers handle the
    /// `NotFound` cases that have a meaning (missing collection, function)
    /// before they get here.
    fn map_error(&self, op: &str, path: &Path, err: io::Error) -> PortError {
        let message = format!("{op} {} failed: {err}", self.rel(path));
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

    // ---- collections ----

    fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        if path.is_root() {
            return Ok(true);
        }
        let dir = self.collection_dir(path);
        match fs::metadata(&dir) {
            Ok(meta) => Ok(meta.is_dir()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
            Err(e) => Err(self.map_error("reading", &dir, e)),
        }
    }

    fn require_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        if self.collection_exists(path)? {
            Ok(())
        } else {
            Err(Self::collection_not_found(path))
        }
    }

    fn create_collection(&self, call: &Call, path: &CollectionPath, env: &EnvMap) -> Result<CollectionInfo, PortError> {
        if path.is_root() {
            return Err(PortError::CollectionExists(path.to_string()));
        }
        let lineage = path.lineage();
        // Top-down, so no delete of an ancestor (or of this path) runs meanwhile.
        let _locks = lineage
            .iter()
            .skip(1)
            .map(|p| self.lock_collection(call, p, LockMode::Shared, true))
            .collect::<Result<Vec<_>, _>>()?;
        call.commit_point()?;
        let collections = self.collections_dir();
        fs::create_dir_all(&collections).map_err(|e| self.map_error("creating", &collections, e))?;
        // Ancestors (not the root, not the leaf): mkdir -p, with their `functions/`.
        for ancestor in lineage.iter().skip(1).take(lineage.len().saturating_sub(2)) {
            let dir = self.functions_dir(ancestor);
            fs::create_dir_all(&dir).map_err(|e| self.map_error("creating", &dir, e))?;
        }
        let dir = self.collection_dir(path);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(PortError::CollectionExists(path.to_string()))
            }
            Err(e) => return Err(self.map_error("creating", &dir, e)),
        }
        let finish = || -> Result<CollectionInfo, PortError> {
            let functions = dir.join(FUNCTIONS_DIR);
            fs::create_dir(&functions).map_err(|e| self.map_error("creating", &functions, e))?;
            if !env.is_empty() {
                self.write_env(call, &self.collection_env_file(path), env)?;
            }
            let meta = fs::metadata(&dir).map_err(|e| self.map_error("reading", &dir, e))?;
            Ok(CollectionInfo {
                path: path.clone(),
                created_at: birth_time(&meta),
            })
        };
        finish().inspect_err(|_| {
            // Leave nothing half-created behind.
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(path = %self.rel(&dir), error = %e, "Could not remove a half-created collection.");
            }
        })
    }

    fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        let mut out = Vec::new();
        self.walk_collections(&self.collections_dir(), &CollectionPath::root(), &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Adds every collection below `dir` (the directory of `path`) to `out`.
    /// Depth is bounded by the collection path rules (32 segments).
    fn walk_collections(
        &self,
        dir: &Path,
        path: &CollectionPath,
        out: &mut Vec<CollectionInfo>,
    ) -> Result<(), PortError> {
        for (child, child_dir, meta) in self.child_collections(dir, path)? {
            out.push(CollectionInfo {
                path: child.clone(),
                created_at: birth_time(&meta),
            });
            self.walk_collections(&child_dir, &child, out)?;
        }
        Ok(())
    }

    /// The entries of `dir`; `None` when it does not exist (or is not a directory).
    fn read_dir_if_exists(&self, dir: &Path) -> Result<Option<fs::ReadDir>, PortError> {
        match fs::read_dir(dir) {
            Ok(entries) => Ok(Some(entries)),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(self.map_error("listing", dir, e)),
        }
    }

    /// The direct sub-collections of the collection `path` stored in `dir`.
    fn child_collections(
        &self,
        dir: &Path,
        path: &CollectionPath,
    ) -> Result<Vec<(CollectionPath, PathBuf, Metadata)>, PortError> {
        let Some(entries) = self.read_dir_if_exists(dir)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.map_error("listing", dir, e))?;
            let child_dir = entry.path();
            let meta = match fs::metadata(&child_dir) {
                Ok(meta) if meta.is_dir() => meta,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(self.map_error("reading", &child_dir, e)),
            };
            let Some(segment) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(dir = %self.rel(&child_dir), "Skipping a directory whose name is not UTF-8.");
                continue;
            };
            if segment == FUNCTIONS_DIR || (path.is_root() && segment == ROOT_DIR) || segment.starts_with('.') {
                continue;
            }
            match path.child(&segment) {
                // `child` normalises (lowercases); only an exact match names this directory.
                Ok(child) if child.segments().last() == Some(segment.as_str()) => {
                    out.push((child, child_dir, meta));
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(dir = %self.rel(&child_dir), "Skipping a directory that is not a valid collection path segment.");
                }
            }
        }
        Ok(out)
    }

    fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        self.require_collection(path)?;
        self.read_env(&self.collection_env_file(path))
    }

    fn set_collection_env(&self, call: &Call, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        let file = self.collection_env_file(path);
        let _lock = self.lock_collection(call, path, LockMode::Shared, false)?;
        if path.is_root() {
            let dir = self.collection_dir(path);
            fs::create_dir_all(&dir).map_err(|e| self.map_error("creating", &dir, e))?;
        } else {
            self.require_collection(path)?;
        }
        if env.is_empty() {
            call.commit_point()?;
            self.remove_if_exists(&file)
        } else {
            let result = self.write_env(call, &file, env);
            // The directory went away between the check and the write.
            match result {
                Err(_) if !self.collection_exists(path)? => Err(Self::collection_not_found(path)),
                other => other,
            }
        }
    }

    /// Deletes an empty collection. Under the collection's exclusive lock
    /// (no save, env write, delete of a function or creation of a child runs
    /// meanwhile, in any process) it checks emptiness, then moves the
    /// directory in one rename into a hidden tombstone next to it (a name
    /// starting with a dot, never a collection) and removes that. The
    /// collection is gone at the rename or still whole; a tombstone that
    /// could not be removed is hidden and goes with its parent.
    fn delete_collection(&self, call: &Call, path: &CollectionPath) -> Result<(), PortError> {
        let Some(segment) = path.segments().last().map(str::to_owned) else {
            return Err(PortError::InvalidCollectionPath(
                "the root collection cannot be deleted".into(),
            ));
        };
        let _lock = self.lock_collection(call, path, LockMode::Exclusive, false)?;
        self.require_collection(path)?;
        let dir = self.collection_dir(path);
        if !self.child_collections(&dir, path)?.is_empty() || !self.list_functions(path)?.is_empty() {
            return Err(PortError::CollectionNotEmpty(path.to_string()));
        }
        let parent = dir.parent().unwrap_or(&self.data_dir).to_owned();
        // An empty hidden directory to move the collection into (dropped = removed).
        let tombstone = tempfile::Builder::new()
            .prefix(&format!(".{segment}."))
            .suffix(TOMBSTONE_SUFFIX)
            .tempdir_in(&parent)
            .map_err(|e| self.map_error("creating a tombstone for", &dir, e))?;
        call.commit_point()?;
        // What is left is ours (env file, lock files, `functions/`) or
        // unrelated to the store; it goes with the collection.
        fs::rename(&dir, tombstone.path().join(&segment)).map_err(|e| self.map_error("removing", &dir, e))?;
        if let Err(e) = self.sync_dir(&parent) {
            tracing::warn!(error = %e, "Could not sync a directory after deleting a collection.");
        }
        let hidden = tombstone.path().to_owned();
        if let Err(e) = tombstone.close() {
            tracing::warn!(
                path = %self.rel(&hidden),
                error = %e,
                "Could not remove the files of a deleted collection; they stay hidden."
            );
        }
        Ok(())
    }

    // ---- functions ----

    /// The current version of a function, new layout first, then legacy.
    fn find(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Option<Found>, PortError> {
        let source = self.function_file(collection, name, SOURCE_EXT);
        if let Some(meta) = self.file_metadata(&source)? {
            let version = self.read_meta(&self.function_file(collection, name, META_EXT))?;
            return Ok(Some(Found {
                source,
                env: self.function_file(collection, name, ENV_EXT),
                version: version.unwrap_or(Version::FIRST),
                modified: modified_time(&meta),
            }));
        }
        if collection.is_root() {
            let legacy = self.legacy_file(name, SOURCE_EXT);
            if let Some(meta) = self.file_metadata(&legacy)? {
                return Ok(Some(Found {
                    source: legacy,
                    env: self.legacy_file(name, ENV_EXT),
                    version: Version::FIRST,
                    modified: modified_time(&meta),
                }));
            }
        }
        Ok(None)
    }

    /// The current version and a token of the files behind it: (modification
    /// time, size) of the source, env and meta files, so a save, a delete and
    /// re-create, or a hand edit of any of them changes it.
    fn current_revision(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Revision, PortError> {
        let found = self.find_required(collection, name)?;
        let meta_file = self.function_file(collection, name, META_EXT);
        let mut token = found.version.to_string();
        for path in [&found.source, &found.env, &meta_file] {
            match self.file_metadata(path)? {
                Some(meta) => {
                    let nanos = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    token.push_str(&format!(":{nanos}.{}", meta.len()));
                }
                None => token.push_str(":-"),
            }
        }
        Ok(Revision {
            version: found.version,
            token,
        })
    }

    /// The error for a function that was not found: the collection first.
    fn not_found(&self, collection: &CollectionPath, name: &FunctionName) -> PortError {
        match self.collection_exists(collection) {
            Ok(true) => PortError::FunctionNotFound(function_id(collection, name)),
            Ok(false) => Self::collection_not_found(collection),
            Err(e) => e,
        }
    }

    fn find_required(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Found, PortError> {
        self.find(collection, name)?
            .ok_or_else(|| self.not_found(collection, name))
    }

    fn get_function(
        &self,
        call: &Call,
        collection: &CollectionPath,
        name: &FunctionName,
        pinned: Option<Version>,
    ) -> Result<Deployment, PortError> {
        self.with_read_lock(call, &self.function_file(collection, name, LOCK_EXT), || {
            let found = self.find_required(collection, name)?;
            if let Some(version) = pinned.filter(|v| *v != found.version) {
                return Err(PortError::VersionNotAvailable {
                    function: function_id(collection, name),
                    version: version.get(),
                    current: found.version.get(),
                });
            }
            let source_code = match fs::read_to_string(&found.source) {
                Ok(source) => source,
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(self.not_found(collection, name)),
                Err(e) => return Err(self.map_error("reading", &found.source, e)),
            };
            Ok(Deployment {
                collection_path: collection.clone(),
                name: name.clone(),
                language: Language::Javascript,
                source_code,
                env: self.read_env(&found.env)?,
                version: found.version,
                created_at: found.modified,
            })
        })
    }

    fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
        self.require_collection(collection)?;
        let mut out: BTreeMap<FunctionName, FunctionSummary> = BTreeMap::new();
        for (name, meta) in self.function_files(&self.functions_dir(collection))? {
            let version = self
                .read_meta(&self.function_file(collection, &name, META_EXT))?
                .unwrap_or(Version::FIRST);
            out.insert(name.clone(), summary(collection, name, version, &meta));
        }
        if collection.is_root() {
            for (name, meta) in self.function_files(&self.legacy_dir())? {
                if !out.contains_key(&name) {
                    out.insert(name.clone(), summary(collection, name, Version::FIRST, &meta));
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// The `{name}.mjs` files of a directory with valid names.
    fn function_files(&self, dir: &Path) -> Result<Vec<(FunctionName, Metadata)>, PortError> {
        let Some(entries) = self.read_dir_if_exists(dir)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.map_error("listing", dir, e))?;
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(SOURCE_EXT)) else {
                continue;
            };
            let path = entry.path();
            let Some(meta) = self.file_metadata(&path)? else {
                continue;
            };
            match FunctionName::parse(stem) {
                Ok(name) => out.push((name, meta)),
                Err(_) => {
                    tracing::warn!(file = %self.rel(&path), "Skipping a source file whose name is not a valid function name.");
                }
            }
        }
        Ok(out)
    }

    fn save_function(&self, call: &Call, new: &NewVersion) -> Result<Deployment, PortError> {
        let collection = &new.collection_path;
        let name = &new.name;
        let _locks = self.lock_exclusive(call, collection, name)?;
        let current = self.find(collection, name)?.map(|f| f.version);
        let version = current.map_or(Version::FIRST, Version::next);

        let dir = self.functions_dir(collection);
        let source_path = self.function_file(collection, name, SOURCE_EXT);
        let env_path = self.function_file(collection, name, ENV_EXT);
        let meta_path = self.function_file(collection, name, META_EXT);

        // Stage everything, then rename: source, env, meta (the meta commits the number).
        let source = self.stage(&source_path, new.source_code.as_bytes(), Visibility::Public)?;
        let env = if new.env.is_empty() {
            None
        } else {
            Some(self.stage(&env_path, &env_json(&new.env)?, Visibility::Private)?)
        };
        let meta_bytes = serde_json::to_vec(&Meta { version: version.get() })
            .map_err(|e| PortError::internal("serialising meta", e))?;
        let meta = self.stage(&meta_path, &meta_bytes, Visibility::Public)?;

        // Nothing is visible yet: past the bound, the staged files are
        // dropped (deleted) and the version is never published.
        call.commit_point()?;
        self.commit(source, &source_path)?;
        match env {
            Some(env) => self.commit(env, &env_path)?,
            None => self.remove_if_exists(&env_path)?,
        }
        self.commit(meta, &meta_path)?;
        self.sync_dir(&dir)?;

        let modified = fs::metadata(&source_path)
            .map(|m| modified_time(&m))
            .map_err(|e| self.map_error("reading", &source_path, e))?;
        Ok(Deployment {
            collection_path: collection.clone(),
            name: name.clone(),
            language: new.language,
            source_code: new.source_code.clone(),
            env: new.env.clone(),
            version,
            created_at: modified,
        })
    }

    fn delete_function(&self, call: &Call, collection: &CollectionPath, name: &FunctionName) -> Result<(), PortError> {
        let _locks = self.lock_exclusive(call, collection, name)?;
        self.find_required(collection, name)?;
        call.commit_point()?;
        // The source first: once it is gone, the function is gone.
        for ext in [SOURCE_EXT, ENV_EXT, META_EXT] {
            self.remove_if_exists(&self.function_file(collection, name, ext))?;
        }
        if collection.is_root() {
            for ext in [SOURCE_EXT, ENV_EXT] {
                self.remove_if_exists(&self.legacy_file(name, ext))?;
            }
        }
        Ok(())
    }

    // ---- locks ----

    /// Takes the shared lock of a (non-root) collection, which keeps it from
    /// being deleted, or the exclusive one, which deleting it needs. For the
    /// root, which is never deleted, there is nothing to lock.
    /// `CollectionNotFound` without touching anything for a missing
    /// collection unless `create_for_missing` (creating a collection).
    fn lock_collection(
        &self,
        call: &Call,
        path: &CollectionPath,
        mode: LockMode,
        create_for_missing: bool,
    ) -> Result<Option<File>, PortError> {
        if path.is_root() {
            return Ok(None);
        }
        if !create_for_missing {
            // No lock file for a path that names no collection (callers check
            // again under the lock): requests for random paths leave nothing.
            self.require_collection(path)?;
        }
        let lock_path = self.collection_lock_file(path);
        if let Some(dir) = lock_path.parent() {
            fs::create_dir_all(dir).map_err(|e| self.map_error("creating", dir, e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| self.map_error("opening lock file", &lock_path, e))?;
        self.wait_lock(call, &file, &lock_path, mode)?;
        Ok(Some(file))
    }

    /// Takes the shared lock of the collection, then the cross-process lock
    /// of a function, creating its `functions/` directory when needed.
    /// `CollectionNotFound` if the collection is missing.
    fn lock_exclusive(
        &self,
        call: &Call,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<WriteLocks, PortError> {
        let collection_lock = self.lock_collection(call, collection, LockMode::Shared, false)?;
        let dir = self.functions_dir(collection);
        if collection.is_root() {
            fs::create_dir_all(&dir).map_err(|e| self.map_error("creating", &dir, e))?;
        } else {
            self.require_collection(collection)?;
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(Self::collection_not_found(collection)),
                Err(e) => return Err(self.map_error("creating", &dir, e)),
            }
        }
        let path = self.function_file(collection, name, LOCK_EXT);
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(Self::collection_not_found(collection)),
            Err(e) => return Err(self.map_error("opening lock file", &path, e)),
        };
        self.wait_lock(call, &file, &path, LockMode::Exclusive)?;
        Ok(WriteLocks {
            _function: file,
            _collection: collection_lock,
        })
    }

    /// Takes an advisory lock on `file`, polling until the call's bound so
    /// no blocking thread waits forever on a lock held elsewhere.
    fn wait_lock(&self, call: &Call, file: &File, path: &Path, mode: LockMode) -> Result<(), PortError> {
        loop {
            // Fully qualified: std's inherent `File::try_lock` needs Rust 1.89, above our MSRV.
            let attempt = match mode {
                LockMode::Shared => fs4::FileExt::try_lock_shared(file),
                LockMode::Exclusive => fs4::FileExt::try_lock(file),
            };
            match attempt {
                Ok(()) => return Ok(()),
                Err(fs4::TryLockError::WouldBlock) => {}
                Err(fs4::TryLockError::Error(e)) => return Err(self.map_error("locking", path, e)),
            }
            call.check()?;
            std::thread::sleep(LOCK_POLL.min(call.deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// Runs `read` under a shared lock of `lock_path` when the file exists.
    /// Without a lock file no save has started; if one appears meanwhile,
    /// the read is repeated under the lock.
    fn with_read_lock<T>(
        &self,
        call: &Call,
        lock_path: &Path,
        read: impl Fn() -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let open = || match File::open(lock_path) {
            Ok(file) => {
                self.wait_lock(call, &file, lock_path, LockMode::Shared)?;
                Ok(Some(file))
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(self.map_error("opening lock file", lock_path, e)),
        };
        if let Some(_shared) = open()? {
            return read();
        }
        let result = read();
        match open()? {
            Some(_shared) => read(),
            None => result,
        }
    }

    // ---- files ----

    /// Metadata of a regular file; `None` when it is missing or not a file.
    fn file_metadata(&self, path: &Path) -> Result<Option<Metadata>, PortError> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(Some(meta)),
            Ok(_) => Ok(None),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(self.map_error("reading", path, e)),
        }
    }

    /// The version in a meta file; `None` when the file is missing. A
    /// version below 1 (never written by us) reads as 1, as in Go.
    fn read_meta(&self, path: &Path) -> Result<Option<Version>, PortError> {
        let Some(bytes) = self.read_optional(path)? else {
            return Ok(None);
        };
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| self.corrupt(path, e))?;
        Ok(Some(Version::new(meta.version).unwrap_or(Version::FIRST)))
    }

    /// An env file; missing is empty. Entries that break today's rules are
    /// dropped with a warning naming their keys (older data checked less).
    fn read_env(&self, path: &Path) -> Result<EnvMap, PortError> {
        let Some(bytes) = self.read_optional(path)? else {
            return Ok(EnvMap::new());
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| self.corrupt(path, e))?;
        let (env, dropped) = EnvMap::from_stored_json(value).map_err(|other| PortError::Internal {
            message: format!("{} holds {other} instead of an object of strings", self.rel(path)),
            source: None,
        })?;
        if !dropped.is_empty() {
            tracing::warn!(
                file = %self.rel(path),
                dropped_keys = ?dropped,
                "Ignoring env entries that break the env rules."
            );
        }
        Ok(env)
    }

    fn read_optional(&self, path: &Path) -> Result<Option<Vec<u8>>, PortError> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(self.map_error("reading", path, e)),
        }
    }

    fn write_env(&self, call: &Call, path: &Path, env: &EnvMap) -> Result<(), PortError> {
        let staged = self.stage(path, &env_json(env)?, Visibility::Private)?;
        call.commit_point()?;
        self.commit(staged, path)?;
        if let Some(dir) = path.parent() {
            self.sync_dir(dir)?;
        }
        Ok(())
    }

    /// Writes `bytes` to a synced temp file next to `target`.
    fn stage(&self, target: &Path, bytes: &[u8], visibility: Visibility) -> Result<tempfile::NamedTempFile, PortError> {
        let dir = target.parent().unwrap_or(&self.data_dir);
        let prefix = format!(
            ".{}.",
            target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        );
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = match visibility {
                Visibility::Public => 0o644,
                Visibility::Private => 0o600,
            };
            builder.permissions(fs::Permissions::from_mode(mode));
        }
        #[cfg(not(unix))]
        let _ = visibility;
        let mut file = builder
            .tempfile_in(dir)
            .map_err(|e| self.map_error("creating a temp file for", target, e))?;
        file.write_all(bytes)
            .and_then(|()| file.as_file().sync_all())
            .map_err(|e| self.map_error("writing", target, e))?;
        Ok(file)
    }

    /// Renames a staged file over `target`.
    fn commit(&self, staged: tempfile::NamedTempFile, target: &Path) -> Result<(), PortError> {
        staged
            .persist(target)
            .map(drop)
            .map_err(|e| self.map_error("replacing", target, e.error))
    }

    fn remove_if_exists(&self, path: &Path) -> Result<(), PortError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(()),
            Err(e) => Err(self.map_error("removing", path, e)),
        }
    }

    /// Makes renames in `dir` durable (unix; elsewhere a no-op).
    fn sync_dir(&self, dir: &Path) -> Result<(), PortError> {
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.map_error("syncing", dir, e))?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }

    fn health(&self) -> Result<(), PortError> {
        let dir = &self.data_dir;
        let meta = fs::metadata(dir).map_err(|e| self.map_error("reading data directory", dir, e))?;
        if !meta.is_dir() {
            return Err(PortError::storage_unavailable(
                "the data directory is not a directory",
                io::Error::new(ErrorKind::NotADirectory, dir.display().to_string()),
            ));
        }
        let probe = tempfile::Builder::new()
            .prefix(".health-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| self.map_error("writing to data directory", dir, e))?;
        probe
            .close()
            .map_err(|e| self.map_error("cleaning up in data directory", dir, e))
    }
}

fn env_json(env: &EnvMap) -> Result<Vec<u8>, PortError> {
    serde_json::to_vec(env.as_map()).map_err(|e| PortError::internal("serialising env", e))
}

fn summary(collection: &CollectionPath, name: FunctionName, version: Version, meta: &Metadata) -> FunctionSummary {
    FunctionSummary {
        collection_path: collection.clone(),
        name,
        language: Language::Javascript,
        version,
        created_at: modified_time(meta),
    }
}

fn modified_time(meta: &Metadata) -> DateTime<Utc> {
    meta.modified().map(DateTime::from).unwrap_or_else(|_| Utc::now())
}

/// Birth time where the platform has it, else the modification time.
fn birth_time(meta: &Metadata) -> DateTime<Utc> {
    meta.created()
        .map(DateTime::from)
        .unwrap_or_else(|_| modified_time(meta))
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
        version: Option<Version>,
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
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use faas_ports::Component;

    use super::*;

    fn cp(raw: &str) -> CollectionPath {
        CollectionPath::parse(raw).unwrap()
    }

    fn name(raw: &str) -> FunctionName {
        FunctionName::parse(raw).unwrap()
    }

    fn new_version(collection: &str, fname: &str, source: &str, env: &[(&str, &str)]) -> NewVersion {
        let map: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        NewVersion {
            collection_path: cp(collection),
            name: name(fname),
            language: Language::Javascript,
            source_code: source.to_owned(),
            env: EnvMap::parse(map).unwrap(),
        }
    }

    fn store() -> (tempfile::TempDir, FsSourceStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsSourceStore::new(dir.path().join("data")).unwrap();
        (dir, store)
    }

    fn write(path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// Every file below `dir`, relative to it, sorted.
    fn tree(dir: &Path) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(base, &path, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    #[cfg(feature = "testkit")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_source_store_contract() {
        let (_dir, store) = store();
        crate::testkit::source_store_contract(&store, crate::testkit::ContractOptions::CURRENT_ONLY).await;
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
        // Unrelated files and names that are not function names are ignored.
        write(&data.join("functions/notes.txt"), "x");
        write(&data.join("functions/bad.name.mjs"), "x");
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
        fs::create_dir_all(data.join("collections/team/env")).unwrap();
        fs::create_dir_all(data.join("collections/.hidden")).unwrap();

        let paths: Vec<String> = store
            .list_collections()
            .await
            .unwrap()
            .into_iter()
            .map(|c| String::from(c.path))
            .collect();
        assert_eq!(paths, ["team", "team/api"]);
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
    async fn writes_leave_no_temp_files() {
        let (_dir, store) = store();
        store
            .create_collection(
                &cp("a/b"),
                &EnvMap::parse(BTreeMap::from([("K".into(), "v".into())])).unwrap(),
            )
            .await
            .unwrap();
        store
            .set_collection_env(
                &CollectionPath::root(),
                &EnvMap::parse(BTreeMap::from([("R".into(), "1".into())])).unwrap(),
            )
            .await
            .unwrap();
        for i in 0..3 {
            store
                .save_function(&new_version("a/b", "f", &format!("v{i}"), &[("E", "1")]))
                .await
                .unwrap();
            store
                .save_function(&new_version("", "g", &format!("v{i}"), &[]))
                .await
                .unwrap();
        }
        store.health().await.unwrap();
        assert_eq!(
            tree(store.data_dir()),
            [
                ".locks/collections/a.lock",
                ".locks/collections/a/b.lock",
                "collections/__root__/collection.env.json",
                "collections/__root__/functions/g.lock",
                "collections/__root__/functions/g.meta.json",
                "collections/__root__/functions/g.mjs",
                "collections/a/b/collection.env.json",
                "collections/a/b/functions/f.env.json",
                "collections/a/b/functions/f.lock",
                "collections/a/b/functions/f.meta.json",
                "collections/a/b/functions/f.mjs",
            ]
        );
        assert!(
            store.data_dir().join("collections/a/functions").is_dir(),
            "ancestors get their functions/ as in Go"
        );
        let f = store.get_function(&cp("a/b"), &name("f"), None).await.unwrap();
        assert_eq!(
            (f.version.get(), f.source_code.as_str(), f.env.get("E")),
            (3, "v2", Some("1"))
        );
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_on_one_dir_never_lose_a_version() {
        let (_dir, first) = store();
        let second = FsSourceStore::new(first.data_dir()).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..10 {
            for store in [first.clone(), second.clone()] {
                tasks.spawn(async move {
                    store
                        .save_function(&new_version("", "shared", &format!("v{i}"), &[]))
                        .await
                });
            }
        }
        let mut versions = Vec::new();
        while let Some(result) = tasks.join_next().await {
            versions.push(result.unwrap().unwrap().version.get());
        }
        versions.sort_unstable();
        assert_eq!(versions, (1..=20).collect::<Vec<_>>());
        assert_eq!(
            second
                .current_revision(&CollectionPath::root(), &name("shared"))
                .await
                .unwrap()
                .version
                .get(),
            20
        );
        assert!(
            first.inner.save_locks.lock().unwrap().is_empty(),
            "in-process locks are pruned"
        );
    }

    /// Takes a function's lock file as another process would.
    fn hold_lock(path: &Path) -> File {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        fs4::FileExt::lock(&file).unwrap();
        file
    }

    /// The call answers (a hang guard, not a timing assertion) with the
    /// storage timeout's error.
    async fn assert_timed_out<T: std::fmt::Debug>(call: impl std::future::Future<Output = Result<T, PortError>>) {
        let result = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("a call blocked by a held lock still answers");
        let err = result.unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");
        assert!(err.to_string().contains("within 200 ms"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_function_lock_bounds_saves_and_reads_and_never_commits_later() {
        let (_dir, store) = store();
        let store = store.with_timeout(Duration::from_millis(200));
        let root = CollectionPath::root();
        store.save_function(&new_version("", "f", "one", &[])).await.unwrap();
        let other = hold_lock(&store.data_dir().join("collections/__root__/functions/f.lock"));

        assert_timed_out(store.save_function(&new_version("", "f", "two", &[("E", "1")]))).await;
        assert_timed_out(store.get_function(&root, &name("f"), None)).await;
        assert_timed_out(store.delete_function(&root, &name("f"))).await;

        // The holder lets go; the abandoned work must not publish anything:
        // the function is still v1, and the next save is v2 (an abandoned save
        // published late would make it v3).
        drop(other);
        let d = store.get_function(&root, &name("f"), None).await.unwrap();
        assert_eq!((d.version.get(), d.source_code.as_str()), (1, "one"));
        assert!(d.env.is_empty());
        let files = tree(store.data_dir());
        assert!(files.iter().all(|f| !f.ends_with(".tmp")), "{files:?}");
        let saved = store.save_function(&new_version("", "f", "two", &[])).await.unwrap();
        assert_eq!(saved.version.get(), 2, "the store works again");
    }

    #[tokio::test]
    async fn a_zero_bound_fails_every_call_without_writing() {
        let (_dir, store) = store();
        let store = store.with_timeout(Duration::ZERO);
        let err = store
            .save_function(&new_version("", "f", "one", &[]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");
        let err = store.list_collections().await.unwrap_err();
        assert_eq!(err.code(), "STORAGE_UNAVAILABLE", "{err:?}");
        // An abandoned call never passes its commit point (unit-tested on
        // `Call` below), so nothing can appear later either.
        assert!(!store.data_dir().join("collections").exists(), "nothing was written");
    }

    #[test]
    fn an_abandoned_call_never_commits_and_a_publishing_one_says_so() {
        let call = Call::new(Duration::from_secs(60));
        call.check().unwrap();
        assert_eq!(call.abandon().code(), "STORAGE_UNAVAILABLE");
        assert!(call.check().is_err());
        assert!(call.commit_point().is_err(), "abandoned work never publishes");

        let call = Call::new(Duration::from_secs(60));
        call.commit_point().unwrap();
        call.commit_point().unwrap();
        let err = call.abandon();
        assert!(err.to_string().contains("may still be applied"), "{err}");

        assert!(Call::new(Duration::ZERO).commit_point().is_err(), "past the deadline");
        // A bound too large for the clock does not panic.
        Call::new(Duration::MAX).commit_point().unwrap();
    }

    fn env(pairs: &[(&str, &str)]) -> EnvMap {
        EnvMap::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saves_racing_a_collection_delete_are_never_lost() {
        let (_dir, first) = store();
        // A second store on the same directory stands for another process.
        let second = FsSourceStore::new(first.data_dir()).unwrap();
        let team_env = env(&[("TEAM", "t")]);
        let (mut deleted, mut refused) = (0, 0);
        for round in 0..24_u64 {
            let raw = format!("race/r{round}");
            let path = cp(&raw);
            first.create_collection(&path, &team_env).await.unwrap();
            // The delete is spawned at a different point of the burst each round.
            let mut saves = tokio::task::JoinSet::new();
            let mut deletion = None;
            for i in 0..8_u64 {
                if i == round % 8 {
                    let (store, path) = (
                        if round % 2 == 0 { second.clone() } else { first.clone() },
                        path.clone(),
                    );
                    deletion = Some(tokio::spawn(async move { store.delete_collection(&path).await }));
                }
                let store = if i % 2 == 0 { first.clone() } else { second.clone() };
                let raw = raw.clone();
                saves.spawn(async move {
                    let new = new_version(&raw, &format!("f{i}"), &format!("source {i}"), &[("N", "1")]);
                    store.save_function(&new).await
                });
            }
            let deletion = deletion.unwrap().await.unwrap();
            let mut saved = Vec::new();
            while let Some(result) = saves.join_next().await {
                match result.unwrap() {
                    Ok(d) => saved.push(d),
                    Err(PortError::CollectionNotFound(p)) => assert_eq!(p, raw),
                    Err(e) => panic!("unexpected save error: {e:?}"),
                }
            }
            for d in &saved {
                let loaded = first.get_function(&path, &d.name, None).await;
                let loaded =
                    loaded.unwrap_or_else(|e| panic!("a save that answered Ok was lost ({e:?}); delete: {deletion:?}"));
                assert_eq!((loaded.version, &loaded.source_code), (d.version, &d.source_code));
            }
            match deletion {
                Ok(()) => {
                    deleted += 1;
                    assert!(saved.is_empty());
                    assert!(!first.collection_exists(&path).await.unwrap());
                }
                Err(PortError::CollectionNotEmpty(_)) => {
                    refused += 1;
                    assert!(!saved.is_empty(), "refused, yet no save answered Ok");
                    assert_eq!(
                        first.collection_env(&path).await.unwrap(),
                        team_env,
                        "the env file stays"
                    );
                }
                Err(e) => panic!("unexpected delete error: {e:?}"),
            }
        }
        eprintln!("deleted first: {deleted}, refused: {refused}");
        // No tombstone or lock file is left in or shown as the collection tree.
        let race = first.data_dir().join("collections/race");
        for entry in fs::read_dir(&race).unwrap() {
            let entry = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(entry.starts_with('r') || entry == "functions", "{entry}");
        }
        let listed = first.list_collections().await.unwrap();
        assert!(
            listed.iter().all(|c| String::from(c.path.clone()).starts_with("race")),
            "{listed:?}"
        );
        assert_eq!(listed.len(), 1 + refused, "{listed:?}");
    }

    #[tokio::test]
    async fn a_refused_delete_leaves_the_collection_whole() {
        let (_dir, store) = store();
        let data = store.data_dir().to_owned();
        store.create_collection(&cp("keep"), &env(&[("K", "v")])).await.unwrap();
        store.save_function(&new_version("keep", "f", "f", &[])).await.unwrap();
        let err = store.delete_collection(&cp("keep")).await.unwrap_err();
        assert!(matches!(err, PortError::CollectionNotEmpty(_)), "{err:?}");
        assert!(data.join("collections/keep/collection.env.json").is_file());
        let err = store
            .save_function(&new_version("nope", "f", "f", &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::CollectionNotFound(_)), "{err:?}");
        assert!(
            !data.join(".locks/collections/nope.lock").exists(),
            "no lock file for a missing collection"
        );
        assert_eq!(store.collection_env(&cp("keep")).await.unwrap().get("K"), Some("v"));
        store.get_function(&cp("keep"), &name("f"), None).await.unwrap();

        store.create_collection(&cp("up/child"), &EnvMap::new()).await.unwrap();
        store.set_collection_env(&cp("up"), &env(&[("U", "1")])).await.unwrap();
        let err = store.delete_collection(&cp("up")).await.unwrap_err();
        assert!(matches!(err, PortError::CollectionNotEmpty(_)), "{err:?}");
        assert!(data.join("collections/up/collection.env.json").is_file());

        // Emptied, it goes entirely, leaving no tombstone.
        store.delete_collection(&cp("up/child")).await.unwrap();
        store.delete_collection(&cp("up")).await.unwrap();
        let left: Vec<String> = fs::read_dir(data.join("collections"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["keep"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_collection_lock_bounds_writes_and_deletes() {
        let (_dir, store) = store();
        let store = store.with_timeout(Duration::from_millis(200));
        store.create_collection(&cp("held"), &env(&[("K", "v")])).await.unwrap();
        let lock_path = store.data_dir().join(".locks/collections/held.lock");
        // Another process deleting `held`: writes into it wait, within the bound.
        let other = hold_lock(&lock_path);
        assert_timed_out(store.save_function(&new_version("held", "f", "f", &[]))).await;
        assert_timed_out(store.create_collection(&cp("held/child"), &EnvMap::new())).await;
        assert_timed_out(store.set_collection_env(&cp("held"), &EnvMap::new())).await;
        drop(other);

        // Another process writing into `held`: the delete waits, within the bound.
        let file = File::open(&lock_path).unwrap();
        fs4::FileExt::lock_shared(&file).unwrap();
        assert_timed_out(store.delete_collection(&cp("held"))).await;
        drop(file);
        assert_eq!(store.collection_env(&cp("held")).await.unwrap().get("K"), Some("v"));
        let listed = store.list_collections().await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(store.list_functions(&cp("held")).await.unwrap().is_empty());
        store.delete_collection(&cp("held")).await.unwrap();
        assert!(!store.collection_exists(&cp("held")).await.unwrap());
    }

    #[tokio::test]
    async fn root_collection_is_created_lazily_and_never_deleted() {
        let (_dir, store) = store();
        assert!(!store.data_dir().join("collections").exists());
        assert!(store.collection_exists(&CollectionPath::root()).await.unwrap());
        let err = store.delete_collection(&CollectionPath::root()).await.unwrap_err();
        assert_eq!(err.code(), "INVALID_COLLECTION_PATH");
    }

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
}
