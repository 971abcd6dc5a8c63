//! Locks and deadlines: the bound of one call ([`Call`], with its commit
//! point), the in-process lock of a function ([`SaveGuard`]), and the
//! advisory file locks of functions and collections, polled until the
//! call's deadline.
//!
//! Lock files are removed with what they lock, by the holder of their
//! exclusive lock only, after the data is gone and before the lock is
//! released. A waiter that then gets the lock of the removed file sees that
//! it is no longer the file at its path ([`Inner::open_locked`]) and opens
//! the path again, so two callers never hold "the" lock of one path through
//! two different files.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use faas_ports::{CollectionPath, Component, FunctionName, PortError};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::layout::LOCK_EXT;
use super::Inner;

/// Pause between two attempts at a contended file lock.
pub(super) const LOCK_POLL: Duration = Duration::from_millis(10);

pub(super) type LockKey = (CollectionPath, FunctionName);

/// [`Call`] state: the work has not published anything yet.
pub(super) const PENDING: u8 = 0;
/// [`Call`] state: the work passed its commit point and is publishing.
pub(super) const COMMITTING: u8 = 1;
/// [`Call`] state: the caller gave up; the work must not publish.
pub(super) const ABANDONED: u8 = 2;

/// The bound of one call, shared by its async side and its blocking work.
///
/// The two sides agree through one atomic state, so a write is either
/// abandoned before it publishes anything or was already publishing when
/// the caller gave up; never "answered as failed, published later" (apart
/// from that last window, which the error message names).
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) deadline: Instant,
    timeout: Duration,
    state: Arc<AtomicU8>,
}

impl Call {
    pub(super) fn new(timeout: Duration) -> Self {
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

    pub(super) fn timed_out(&self) -> PortError {
        PortError::Unavailable {
            component: Component::Storage,
            message: format!("files storage did not answer within {} ms", self.timeout.as_millis()),
            source: None,
        }
    }

    /// `Unavailable` once the deadline passed or the caller gave up.
    pub(super) fn check(&self) -> Result<(), PortError> {
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
    pub(super) fn commit_point(&self) -> Result<(), PortError> {
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
    pub(super) fn abandon(&self) -> PortError {
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

/// Holds the in-process lock of one function; removes the map entry when
/// nobody else uses it. Moved into the blocking task so the lock is held
/// until the file work has really finished, even if the caller is dropped.
pub(super) struct SaveGuard {
    pub(super) inner: Arc<Inner>,
    pub(super) key: LockKey,
    pub(super) lock: Arc<AsyncMutex<()>>,
    pub(super) held: Option<OwnedMutexGuard<()>>,
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
pub(super) struct WriteLocks {
    function: File,
    function_path: PathBuf,
    _collection: Option<File>,
}

impl WriteLocks {
    /// Removes the function's lock file, held exclusive (the function is
    /// gone). A failure is logged: a lock file left over is harmless.
    pub(super) fn remove_function_lock(&self, inner: &Inner) {
        inner.remove_held_lock(&self.function, &self.function_path);
    }
}

/// How [`Inner::wait_lock`] locks a file.
#[derive(Debug, Clone, Copy)]
pub(super) enum LockMode {
    Shared,
    Exclusive,
}

impl Inner {
    /// Takes the shared lock of a (non-root) collection, which keeps it from
    /// being deleted, or the exclusive one, which deleting it needs. For the
    /// root, which is never deleted, there is nothing to lock.
    /// `CollectionNotFound` without touching anything for a missing
    /// collection unless `create_for_missing` (creating a collection).
    pub(super) fn lock_collection(
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
        let Some(file) = self.open_locked(call, &lock_path, mode, true)? else {
            // The lock directory went away meanwhile: its collection is gone.
            return Err(Self::collection_not_found(path));
        };
        if !create_for_missing && !self.collection_exists(path)? {
            // Deleted between the check and the lock (whose file this call
            // then created again): remove it, but only as its one holder.
            if fs4::FileExt::try_lock(&file).is_ok() && !self.collection_exists(path)? {
                self.remove_held_lock(&file, &lock_path);
            }
            return Err(Self::collection_not_found(path));
        }
        Ok(Some(file))
    }

    /// Takes the shared lock of the collection, then the cross-process lock
    /// of a function, creating its `functions/` directory when needed.
    /// `CollectionNotFound` if the collection is missing.
    pub(super) fn lock_exclusive(
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
        let Some(file) = self.open_locked(call, &path, LockMode::Exclusive, true)? else {
            return Err(Self::collection_not_found(collection));
        };
        Ok(WriteLocks {
            function: file,
            function_path: path,
            _collection: collection_lock,
        })
    }

    /// Opens the lock file at `path` (creating it when `create`) and locks
    /// it, until the file locked is the one at `path`: a lock file is only
    /// ever removed by the holder of its exclusive lock, so a waiter may get
    /// the lock of a file removed meanwhile, and then opens the path again.
    /// `None`: there is no file at `path` (nor, when creating, a directory).
    pub(super) fn open_locked(
        &self,
        call: &Call,
        path: &Path,
        mode: LockMode,
        create: bool,
    ) -> Result<Option<File>, PortError> {
        loop {
            let mut options = OpenOptions::new();
            options.read(true);
            if create {
                options.write(true).create(true).truncate(false);
            }
            let file = match options.open(path) {
                Ok(file) => file,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return Ok(None),
                Err(e) => return Err(self.map_error("opening lock file", path, e)),
            };
            self.wait_lock(call, &file, path, mode)?;
            if is_at(&file, path) {
                return Ok(Some(file));
            }
            call.check()?;
        }
    }

    /// Removes the lock file at `path` whose exclusive lock `held` is ours
    /// (see the module docs). Failures are logged, never returned: the data
    /// is gone either way and a leftover lock file is harmless.
    pub(super) fn remove_held_lock(&self, held: &File, path: &Path) {
        if cfg!(not(unix)) || !is_at(held, path) {
            return;
        }
        if let Err(e) = self.remove_if_exists(path) {
            tracing::warn!(error = %faas_ports::report::Report(&e), "Could not remove a lock file.");
        }
    }

    /// Takes an advisory lock on `file`, polling until the call's bound so
    /// no blocking thread waits forever on a lock held elsewhere.
    pub(super) fn wait_lock(&self, call: &Call, file: &File, path: &Path, mode: LockMode) -> Result<(), PortError> {
        loop {
            // Fully qualified: std has an inherent `File::try_lock` of its own (Rust 1.89).
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
    /// Without a lock file, the read is repeated under the lock if one
    /// appears meanwhile, and until two reads in a row agree otherwise.
    pub(super) fn with_read_lock<T: PartialEq>(
        &self,
        call: &Call,
        lock_path: &Path,
        read: impl Fn() -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let open = || self.open_locked(call, lock_path, LockMode::Shared, false);
        if let Some(_shared) = open()? {
            return read();
        }
        // No lock file: no save had started, or the function was deleted
        // with its lock. A save that starts now creates the lock first.
        let mut previous = read();
        loop {
            if let Some(_shared) = open()? {
                return read();
            }
            // Still none: no save ran during the read, unless a save and a
            // delete both did (and removed the lock again). A second read
            // that agrees confirms the first.
            let again = read();
            let agree = match (&previous, &again) {
                (Ok(a), Ok(b)) => a == b,
                (Err(_), Err(_)) => true,
                _ => false,
            };
            if agree {
                return again;
            }
            call.check()?;
            previous = again;
        }
    }
}

/// Whether `file` is the file now at `path` (same device and inode).
#[cfg(unix)]
fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
        _ => false,
    }
}

/// Without inode numbers the identity cannot be checked: lock files are
/// then never removed (see `remove_held_lock`) and always current.
#[cfg(not(unix))]
fn is_at(_file: &File, path: &Path) -> bool {
    path.exists()
}
