//! Where things live below the data directory: the names of the `files`
//! layout, the paths built from validated names, and the small records
//! read from it.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use faas_ports::{CollectionPath, EnvMap, FunctionName, FunctionSummary, Language, PortError, Version};
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

/// The version in the bytes of a `{name}.meta.json`: `{"version":N}`. A
/// version below 1 (never written by us) reads as 1, as in Go; bytes that
/// are not such an object are the JSON error.
pub(crate) fn parse_meta(bytes: &[u8]) -> Result<Version, serde_json::Error> {
    let meta: Meta = serde_json::from_slice(bytes)?;
    Ok(Version::new(meta.version).unwrap_or(Version::FIRST))
}

/// Why the bytes of an env file are not an env map.
#[derive(Debug)]
pub(crate) enum BadEnvFile {
    /// Not JSON at all.
    Json(serde_json::Error),
    /// JSON, but not an object (the JSON found instead).
    NotAnObject(String),
}

/// The env map in the bytes of a `collection.env.json` or `{name}.env.json`,
/// read tolerantly (older implementations checked less): `null` is empty,
/// entries that break today's rules are dropped and named (sorted).
pub(crate) fn parse_env_file(bytes: &[u8]) -> Result<(EnvMap, Vec<String>), BadEnvFile> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(BadEnvFile::Json)?;
    EnvMap::from_stored_json(value).map_err(BadEnvFile::NotAnObject)
}

/// The function a file of a `functions/` directory holds: `{name}.mjs` with
/// a name some version could store (today's grammar or the Go version's,
/// docs/api.md §2.1); `None` for other files (skipped), `Some(Err)` for a
/// source file whose stem no version could store (skipped with a warning).
pub(crate) fn function_of_file(file_name: &str) -> Option<Result<FunctionName, PortError>> {
    file_name.strip_suffix(SOURCE_EXT).map(FunctionName::parse_stored)
}

/// The collection a directory `segment` below the collection `parent`
/// stands for: only a segment that is exactly a valid (normalised) one
/// names a collection (`child_stored` lowercases, so `Team` is no
/// collection). Segments the Go version could store count (`env`, long
/// ones); `functions` and the root's `__root__` are folders of the layout,
/// never collections (see [`representable`]).
pub(crate) fn collection_of_dir(parent: &CollectionPath, segment: &str) -> Option<CollectionPath> {
    parent
        .child_stored(segment)
        .ok()
        .filter(|child| child.segments().last() == Some(segment))
        .filter(representable)
}

/// Whether the layout can hold the collection `path` apart from every
/// other: a segment `functions` would be the functions folder of its
/// parent, a first segment `__root__` the root's folder (the Go version
/// mixed them up, docs/api.md §11), and a segment must leave room for its
/// `.lock` file in a 255-byte file name. Such paths (reachable only as
/// stored or legacy names) exist in no `files` storage.
pub(crate) fn representable(path: &CollectionPath) -> bool {
    unrepresentable_because(path).is_none()
}

/// Why the layout cannot hold `path` (see [`representable`]): the first
/// rule it breaks, for the error message; `None` when it can.
pub(crate) fn unrepresentable_because(path: &CollectionPath) -> Option<String> {
    if path.segments().next() == Some(ROOT_DIR) {
        return Some(format!("its first segment would be the root's `{ROOT_DIR}/` folder"));
    }
    if path.segments().any(|s| s == FUNCTIONS_DIR) {
        return Some(format!(
            "a segment `{FUNCTIONS_DIR}` would be the `{FUNCTIONS_DIR}/` folder of its parent"
        ));
    }
    let max = MAX_FILE_NAME_LEN - LOCK_EXT.len();
    path.segments().find(|s| s.len() > max).map(|s| {
        format!(
            "a segment of {} bytes leaves no room for its `{LOCK_EXT}` file (at most {max} bytes)",
            s.len()
        )
    })
}

/// The longest file name common file systems allow, in bytes.
const MAX_FILE_NAME_LEN: usize = 255;

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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn data_files_read_as_go_wrote_them() {
        assert_eq!(parse_meta(br#"{"version":3}"#).unwrap().get(), 3);
        assert_eq!(parse_meta(br#"{"version":0}"#).unwrap(), Version::FIRST);
        assert!(parse_meta(b"[]").is_err());
        assert!(parse_meta(br#"{"version":-1}"#).is_err());
        let (env, dropped) = parse_env_file(br#"{"A":"1","PORT":"2","N":3}"#).unwrap();
        assert_eq!((env.get("A"), env.len()), (Some("1"), 1));
        assert_eq!(dropped, vec!["N".to_owned(), "PORT".to_owned()]);
        assert!(matches!(parse_env_file(b"null"), Ok((env, dropped)) if env.is_empty() && dropped.is_empty()));
        // Named by its kind, never by its content (which may hold secrets).
        assert!(matches!(parse_env_file(b"[1]"), Err(BadEnvFile::NotAnObject(found)) if found == "an array"));
        assert!(matches!(parse_env_file(b"{"), Err(BadEnvFile::Json(_))));
    }

    #[test]
    fn file_and_directory_names() {
        assert_eq!(function_of_file("hello.mjs").unwrap().unwrap().as_str(), "hello");
        assert!(function_of_file("hello.env.json").is_none());
        assert!(function_of_file("..mjs").unwrap().is_err());
        assert!(function_of_file("a..b.mjs").unwrap().is_err());
        // Names the Go version could store are functions (docs/api.md §2.1).
        assert_eq!(function_of_file("my.func.mjs").unwrap().unwrap().as_str(), "my.func");
        assert_eq!(function_of_file(".hidden.mjs").unwrap().unwrap().as_str(), ".hidden");
        let root = CollectionPath::root();
        assert_eq!(collection_of_dir(&root, "team").unwrap().as_str(), "team");
        for bad in ["Team", "functions", "__root__", "a.b", "..", "", "a/b"] {
            assert!(collection_of_dir(&root, bad).is_none(), "{bad:?}");
        }
        let team = CollectionPath::parse("team").unwrap();
        assert_eq!(collection_of_dir(&team, "api").unwrap().as_str(), "team/api");
        // What the Go version could store: `env`, long segments, `__root__` below the root.
        assert_eq!(collection_of_dir(&root, "env").unwrap().as_str(), "env");
        assert_eq!(collection_of_dir(&team, "__root__").unwrap().as_str(), "team/__root__");
        let long = "l".repeat(100);
        assert_eq!(
            collection_of_dir(&team, &long).unwrap().as_str(),
            format!("team/{long}")
        );
        assert!(collection_of_dir(&team, "functions").is_none());
        assert!(
            collection_of_dir(&root, &"l".repeat(251)).is_none(),
            "no room for its lock file"
        );
        assert!(collection_of_dir(&root, &"l".repeat(250)).is_some());
    }

    proptest! {
        #[test]
        fn env_files_keep_exactly_the_valid_string_entries(
            entries in proptest::collection::btree_map("[A-Za-z_]{1,8}|.{0,6}", prop_oneof![".{0,8}".prop_map(serde_json::Value::from), any::<i64>().prop_map(serde_json::Value::from)], 0..12)
        ) {
            let object: serde_json::Map<String, serde_json::Value> = entries.clone().into_iter().collect();
            let bytes = serde_json::to_vec(&serde_json::Value::Object(object)).unwrap();
            let (env, dropped) = parse_env_file(&bytes).unwrap();
            prop_assert_eq!(env.len() + dropped.len(), entries.len());
            prop_assert!(EnvMap::parse_stored(env.as_map().clone()).is_ok());
            for (key, value) in &entries {
                let strictly_valid = value.is_string() && EnvMap::from_json(&json!({ key.clone(): value })).is_ok();
                prop_assert_eq!(env.get(key).is_some(), strictly_valid, "{:?}", key);
            }
        }

        #[test]
        fn meta_files_give_a_version_of_at_least_one(n in any::<u64>()) {
            let v = parse_meta(format!("{{\"version\":{n}}}").as_bytes()).unwrap();
            prop_assert_eq!(v.get(), if (1..=Version::MAX).contains(&n) { n } else { 1 });
        }

        #[test]
        fn accepted_names_cannot_leave_their_directory(name in "[ -~]{0,20}") {
            if let Some(Ok(f)) = function_of_file(&name) {
                prop_assert_eq!(format!("{f}{SOURCE_EXT}"), name.clone());
                prop_assert!(!f.as_str().contains(['/', '\\']) && !f.as_str().contains("..") && f.as_str() != ".");
            }
            if let Some(c) = collection_of_dir(&CollectionPath::root(), &name) {
                prop_assert_eq!(c.as_str(), name.as_str());
                prop_assert!(!name.contains(['/', '.', '\\']) && !name.is_empty());
            }
        }
    }
}
