//! The store's operations on collections and functions, as blocking
//! file work that runs inside the bound of one call.

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use faas_ports::{
    function_id, CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, Language,
    NewVersion, PortError, Revision, Version,
};

use super::atomic::{env_json, Visibility};
use super::layout::{
    birth_time, collection_of_dir, function_of_file, modified_time, representable, summary, unrepresentable_because,
    Found, Meta, ENV_EXT, FUNCTIONS_DIR, LOCK_EXT, META_EXT, ROOT_DIR, SOURCE_EXT, TOMBSTONE_SUFFIX,
};

use super::locks::{Call, LockMode};
use super::Inner;

impl Inner {
    // ---- collections ----

    pub(super) fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        if path.is_root() {
            return Ok(true);
        }
        if !representable(path) {
            return Ok(false);
        }
        let dir = self.collection_dir(path);
        match fs::metadata(&dir) {
            Ok(meta) => Ok(meta.is_dir()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
            Err(e) => Err(self.map_error("reading", &dir, e)),
        }
    }

    pub(super) fn require_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        if self.collection_exists(path)? {
            Ok(())
        } else {
            Err(Self::collection_not_found(path))
        }
    }

    pub(super) fn create_collection(
        &self,
        call: &Call,
        path: &CollectionPath,
        env: &EnvMap,
    ) -> Result<CollectionInfo, PortError> {
        if path.is_root() {
            return Err(PortError::CollectionExists(path.to_string()));
        }
        if let Some(why) = unrepresentable_because(path) {
            return Err(PortError::InvalidCollectionPath(format!(
                "'{path}' cannot be stored in the files storage: {why}"
            )));
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
                ignored_env_keys: Vec::new(),
            })
        };
        finish().inspect_err(|_| {
            // Leave nothing half-created behind.
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(path = %self.rel(&dir), error = %e, "Could not remove a half-created collection.");
            }
        })
    }

    pub(super) fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        let mut out = Vec::new();
        self.walk_collections(&self.collections_dir(), &CollectionPath::root(), &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Adds every collection below `dir` (the directory of `path`) to `out`.
    /// Depth is bounded by the collection path rules (32 segments).
    pub(super) fn walk_collections(
        &self,
        dir: &Path,
        path: &CollectionPath,
        out: &mut Vec<CollectionInfo>,
    ) -> Result<(), PortError> {
        for (child, child_dir, meta) in self.child_collections(dir, path)? {
            // Listed even when its env file cannot be read (loading it says why).
            let ignored_env_keys = match self.read_env(&self.collection_env_file(&child)) {
                Ok(env) => env.ignored_keys().to_vec(),
                Err(e) => {
                    tracing::warn!(collection = %child, error = %faas_ports::report::Report(&e), "Cannot read a collection env while listing.");
                    Vec::new()
                }
            };
            out.push(CollectionInfo {
                path: child.clone(),
                created_at: birth_time(&meta),
                ignored_env_keys,
            });
            self.walk_collections(&child_dir, &child, out)?;
        }
        Ok(())
    }

    /// The entries of `dir`; `None` when it does not exist (or is not a directory).
    pub(super) fn read_dir_if_exists(&self, dir: &Path) -> Result<Option<fs::ReadDir>, PortError> {
        match fs::read_dir(dir) {
            Ok(entries) => Ok(Some(entries)),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(self.map_error("listing", dir, e)),
        }
    }

    /// The direct sub-collections of the collection `path` stored in `dir`.
    pub(super) fn child_collections(
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
            match collection_of_dir(path, &segment) {
                Some(child) => out.push((child, child_dir, meta)),
                None => {
                    tracing::warn!(dir = %self.rel(&child_dir), "Skipping a directory that is not a valid collection path segment.");
                }
            }
        }
        Ok(out)
    }

    pub(super) fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        self.require_collection(path)?;
        self.read_env(&self.collection_env_file(path))
    }

    pub(super) fn set_collection_env(&self, call: &Call, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
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
    pub(super) fn delete_collection(&self, call: &Call, path: &CollectionPath) -> Result<(), PortError> {
        let Some(segment) = path.segments().last().map(str::to_owned) else {
            return Err(PortError::InvalidCollectionPath(
                "the root collection cannot be deleted".into(),
            ));
        };
        let lock = self.lock_collection(call, path, LockMode::Exclusive, false)?;
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
            tracing::warn!(error = %faas_ports::report::Report(&e), "Could not sync a directory after deleting a collection.");
        }
        let hidden = tombstone.path().to_owned();
        if let Err(e) = tombstone.close() {
            tracing::warn!(
                path = %self.rel(&hidden),
                error = %e,
                "Could not remove the files of a deleted collection; they stay hidden."
            );
        }
        // Its locks go with it, still held exclusive: the lock directory of
        // its children first (nobody can hold one: taking a child's lock
        // takes this one's first, top-down), then its own lock file.
        let child_locks = self.collection_locks_dir(path);
        match fs::remove_dir_all(&child_locks) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %self.rel(&child_locks), error = %e, "Could not remove lock files."),
        }
        if let Some(held) = &lock {
            self.remove_held_lock(held, &self.collection_lock_file(path));
        }
        Ok(())
    }

    // ---- functions ----

    /// The current version of a function, new layout first, then legacy.
    pub(super) fn find(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Option<Found>, PortError> {
        if !representable(collection) {
            return Ok(None);
        }
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
    pub(super) fn current_revision(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Revision, PortError> {
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
    pub(super) fn not_found(&self, collection: &CollectionPath, name: &FunctionName) -> PortError {
        match self.collection_exists(collection) {
            Ok(true) => PortError::FunctionNotFound(function_id(collection, name)),
            Ok(false) => Self::collection_not_found(collection),
            Err(e) => e,
        }
    }

    pub(super) fn find_required(&self, collection: &CollectionPath, name: &FunctionName) -> Result<Found, PortError> {
        self.find(collection, name)?
            .ok_or_else(|| self.not_found(collection, name))
    }

    pub(super) fn get_function(
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
            let Some(bytes) = self.read_optional(
                &found.source,
                self.max_source_file_bytes.load(std::sync::atomic::Ordering::Relaxed),
            )?
            else {
                return Err(self.not_found(collection, name));
            };
            let source_code = String::from_utf8(bytes)
                .map_err(|e| self.map_error("reading", &found.source, io::Error::new(ErrorKind::InvalidData, e)))?;
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

    pub(super) fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
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

    /// The `{name}.mjs` files of a directory whose names are valid stored
    /// names (today's grammar or the Go version's).
    pub(super) fn function_files(&self, dir: &Path) -> Result<Vec<(FunctionName, Metadata)>, PortError> {
        let Some(entries) = self.read_dir_if_exists(dir)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.map_error("listing", dir, e))?;
            let file_name = entry.file_name();
            let Some(parsed) = file_name.to_str().and_then(function_of_file) else {
                continue;
            };
            let path = entry.path();
            let Some(meta) = self.file_metadata(&path)? else {
                continue;
            };
            match parsed {
                Ok(name) => out.push((name, meta)),
                Err(_) => {
                    tracing::warn!(file = %self.rel(&path), "Skipping a source file whose name no version could have stored.");
                }
            }
        }
        Ok(out)
    }

    /// Runs `op` under the write locks of a function; then, when the
    /// function does not exist (deleted, or a first save that failed), its
    /// lock file goes, still held exclusive (see `locks`).
    fn with_write_locks<T>(
        &self,
        call: &Call,
        collection: &CollectionPath,
        name: &FunctionName,
        op: impl FnOnce() -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let locks = self.lock_exclusive(call, collection, name)?;
        let result = op();
        if matches!(self.find(collection, name), Ok(None)) {
            locks.remove_function_lock(self);
        }
        result
    }

    pub(super) fn save_function(&self, call: &Call, new: &NewVersion) -> Result<Deployment, PortError> {
        self.with_write_locks(call, &new.collection_path, &new.name, || self.save_locked(call, new))
    }

    fn save_locked(&self, call: &Call, new: &NewVersion) -> Result<Deployment, PortError> {
        let collection = &new.collection_path;
        let name = &new.name;
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
        Ok(new.to_deployment(version, modified))
    }

    pub(super) fn delete_function(
        &self,
        call: &Call,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<(), PortError> {
        self.with_write_locks(call, collection, name, || {
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
            // The lock file goes last, still held (`with_write_locks`).
            Ok(())
        })
    }

    pub(super) fn health(&self) -> Result<(), PortError> {
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
