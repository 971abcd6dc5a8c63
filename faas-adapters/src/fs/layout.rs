//! Where things live below the data directory: the names of the `files`
//! layout, the paths built from validated names, and the small records
//! read from it.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use faas_ports::{CollectionPath, FunctionName, FunctionSummary, Language, Version};
use serde::{Deserialize, Serialize};

use super::Inner;

/// Directory of every collection, below the data directory.
pub(super) const COLLECTIONS_DIR: &str = "collections";
/// Directory of the root collection, below `collections/`.
pub(super) const ROOT_DIR: &str = "__root__";
/// Directory of a collection's functions (and of legacy root functions).
pub(super) const FUNCTIONS_DIR: &str = "functions";
/// A collection's env file.
pub(super) const COLLECTION_ENV_FILE: &str = "collection.env.json";
/// Extension of a function source: only files ending so are functions.
pub(super) const SOURCE_EXT: &str = ".mjs";
/// Extension of a function env file.
pub(super) const ENV_EXT: &str = ".env.json";
/// Extension of a function meta file.
pub(super) const META_EXT: &str = ".meta.json";
/// Extension of a function's or collection's advisory lock file.
pub(super) const LOCK_EXT: &str = ".lock";
/// Directory of the collection lock files, below the data directory.
pub(super) const LOCKS_DIR: &str = ".locks";
/// Suffix of the hidden directory a deleted collection is moved into.
pub(super) const TOMBSTONE_SUFFIX: &str = ".deleted";

/// Largest env file read (`{name}.env.json`, `collection.env.json`): the
/// env rules allow 256 entries of 256-byte keys and 4096-byte values, which
/// JSON escaping can make up to six times longer.
pub(super) const MAX_ENV_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Largest meta file read (`{"version":N}`).
pub(super) const MAX_META_FILE_BYTES: u64 = 4096;
/// The source files read are capped at the larger of this and the
/// configured source limit ([`super::FsSourceStore::with_max_source_bytes`]).
pub const MIN_SOURCE_FILE_CAP: u64 = 64 * 1024 * 1024;

/// Content of `{name}.meta.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Meta {
    pub(super) version: u64,
}

/// Where the current version of a function lives.
#[derive(Debug)]
pub(super) struct Found {
    pub(super) source: PathBuf,
    pub(super) env: PathBuf,
    pub(super) version: Version,
    pub(super) modified: DateTime<Utc>,
}

impl Inner {
    // ---- paths (built only from validated names) ----

    pub(super) fn rel<'a>(&self, path: &'a Path) -> std::path::Display<'a> {
        path.strip_prefix(&self.data_dir).unwrap_or(path).display()
    }

    pub(super) fn collections_dir(&self) -> PathBuf {
        self.data_dir.join(COLLECTIONS_DIR)
    }

    pub(super) fn collection_dir(&self, path: &CollectionPath) -> PathBuf {
        let mut dir = self.collections_dir();
        if path.is_root() {
            dir.push(ROOT_DIR);
        } else {
            dir.extend(path.segments());
        }
        dir
    }

    pub(super) fn functions_dir(&self, path: &CollectionPath) -> PathBuf {
        self.collection_dir(path).join(FUNCTIONS_DIR)
    }

    pub(super) fn function_file(&self, path: &CollectionPath, name: &FunctionName, ext: &str) -> PathBuf {
        self.functions_dir(path).join(format!("{name}{ext}"))
    }

    pub(super) fn legacy_dir(&self) -> PathBuf {
        self.data_dir.join(FUNCTIONS_DIR)
    }

    pub(super) fn legacy_file(&self, name: &FunctionName, ext: &str) -> PathBuf {
        self.legacy_dir().join(format!("{name}{ext}"))
    }

    pub(super) fn collection_env_file(&self, path: &CollectionPath) -> PathBuf {
        self.collection_dir(path).join(COLLECTION_ENV_FILE)
    }

    /// `.locks/collections/{s1}/…/{sN}.lock`: outside the collection tree,
    /// so deleting a collection never deletes a lock someone waits on.
    /// Segments never contain a dot, so `{s}.lock` and the directory `{s}/`
    /// of its children never clash.
    pub(super) fn collection_lock_file(&self, path: &CollectionPath) -> PathBuf {
        let mut file = self.data_dir.join(LOCKS_DIR).join(COLLECTIONS_DIR);
        let segments: Vec<&str> = path.segments().collect();
        if let Some((last, parents)) = segments.split_last() {
            file.extend(parents);
            file.push(format!("{last}{LOCK_EXT}"));
        }
        file
    }
}

impl Inner {
    /// `.locks/collections/{s1}/…/{sN}/`: the lock files of the children
    /// of a (non-root) collection.
    pub(super) fn collection_locks_dir(&self, path: &CollectionPath) -> PathBuf {
        let mut dir = self.data_dir.join(LOCKS_DIR).join(COLLECTIONS_DIR);
        dir.extend(path.segments());
        dir
    }
}

pub(super) fn summary(
    collection: &CollectionPath,
    name: FunctionName,
    version: Version,
    meta: &Metadata,
) -> FunctionSummary {
    FunctionSummary {
        collection_path: collection.clone(),
        name,
        language: Language::Javascript,
        version,
        created_at: modified_time(meta),
    }
}

pub(super) fn modified_time(meta: &Metadata) -> DateTime<Utc> {
    meta.modified().map(DateTime::from).unwrap_or_else(|_| Utc::now())
}

/// Birth time where the platform has it, else the modification time.
pub(super) fn birth_time(meta: &Metadata) -> DateTime<Utc> {
    meta.created()
        .map(DateTime::from)
        .unwrap_or_else(|_| modified_time(meta))
}
