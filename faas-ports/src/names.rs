//! Validated names: function names, collection paths, versions, run ids, source URLs.
//!
//! Each type is built only through `parse` (or `parse_stored`, and
//! `TryFrom<String>` for serde), so a value of the type always satisfies the
//! rules of docs/api.md. Serde reads names and paths with the stored rules,
//! so whatever serializes deserializes back; new names and paths from
//! clients are checked with `parse` / `parse_new`, never through serde.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::PortError;

/// Maximum length of a function name in bytes.
pub const MAX_FUNCTION_NAME_LEN: usize = 64;
/// Maximum length of a normalised collection path in bytes.
pub const MAX_COLLECTION_PATH_LEN: usize = 256;
/// Maximum number of segments of a collection path.
pub const MAX_COLLECTION_SEGMENTS: usize = 32;
/// Maximum length of one segment of a collection path in bytes (a segment
/// is a directory name, plus `.lock`, in the `files` storage: far below the
/// 255 bytes file systems allow).
pub const MAX_COLLECTION_SEGMENT_LEN: usize = 64;
/// Maximum length in bytes of a name outside today's grammar that the Go
/// version could store ([`FunctionName::parse_stored`]): the longest name
/// whose files, including the temp file of an atomic write
/// (`.{name}.meta.json.XXXXXX.tmp`), fit a 255-byte file name.
pub const MAX_STORED_FUNCTION_NAME_LEN: usize = 233;
/// Segments that may never appear in a collection path.
pub const RESERVED_SEGMENTS: [&str; 3] = ["__root__", "functions", "env"];

/// A function name.
///
/// Two grammars, one invariant. New names ([`FunctionName::parse`]) match
/// today's `^[A-Za-z][A-Za-z0-9_-]{0,63}$`. Names the Go version could store
/// ([`FunctionName::parse_stored`]: stored functions, and new names under
/// `LOWCODE_FAAS_LEGACY_NAMES=true`) may hold any other character except
/// `/`, `\`, control characters (NUL included) and the sequence `..`, are
/// not `.`, have no surrounding whitespace and are at most
/// [`MAX_STORED_FUNCTION_NAME_LEN`] bytes. Either way the name is one path
/// segment: joined under a directory (as `{name}` or `{name}.ext`) or into an
/// S3 key it never leaves its directory or prefix. Case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FunctionName(String);

impl FunctionName {
    /// Validates `raw` as a function name.
    pub fn parse(raw: &str) -> Result<Self, PortError> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if raw.is_empty() {
            return Err(PortError::InvalidName("name is required".into()));
        }
        if !first_ok || !rest_ok || raw.len() > MAX_FUNCTION_NAME_LEN {
            return Err(PortError::InvalidName(format!(
                "'{}' must match ^[A-Za-z][A-Za-z0-9_-]{{0,63}}$",
                truncate_for_message(raw)
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Validates a name the Go version could have stored: today's grammar,
    /// or the legacy one (see the type's docs). Used to address stored
    /// functions (get, invoke, update, delete, listings of stored data) and
    /// for new names when legacy names are enabled.
    pub fn parse_stored(raw: &str) -> Result<Self, PortError> {
        if let Ok(name) = Self::parse(raw) {
            return Ok(name);
        }
        let refuse = |why: &str| {
            Err(PortError::InvalidName(format!(
                "'{}' is not a valid function name: {why}",
                truncate_for_message(&raw.escape_debug().to_string())
            )))
        };
        if raw.is_empty() {
            return Err(PortError::InvalidName("name is required".into()));
        }
        if raw.len() > MAX_STORED_FUNCTION_NAME_LEN {
            return refuse(&format!("longer than {MAX_STORED_FUNCTION_NAME_LEN} bytes"));
        }
        if raw == "." || raw.contains("..") {
            return refuse("'.' and '..' are not names");
        }
        if raw.contains(['/', '\\']) {
            return refuse("'/' and '\\' are not allowed");
        }
        if raw.chars().any(char::is_control) {
            return refuse("control characters are not allowed");
        }
        if raw.trim() != raw {
            return refuse("surrounding whitespace is not allowed");
        }
        Ok(Self(raw.to_owned()))
    }

    /// [`FunctionName::parse_stored`] when `legacy` (the setting
    /// `LOWCODE_FAAS_LEGACY_NAMES`), else [`FunctionName::parse`]: the rule
    /// for a name that is about to be created.
    pub fn parse_new(raw: &str, legacy: bool) -> Result<Self, PortError> {
        if legacy {
            Self::parse_stored(raw)
        } else {
            Self::parse(raw)
        }
    }

    /// True when the name follows today's grammar (false for a legacy name).
    pub fn is_current_grammar(&self) -> bool {
        Self::parse(&self.0).is_ok()
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FunctionName {
    type Error = PortError;
    /// [`FunctionName::parse_stored`]: a stored legacy name reads back.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse_stored(&value)
    }
}

impl From<FunctionName> for String {
    fn from(value: FunctionName) -> Self {
        value.0
    }
}

/// A normalised collection path; the empty path is the root collection.
///
/// Invariants: lowercase; no leading or trailing `/`; at most 256 bytes and
/// 32 segments; every segment matches `^[a-z0-9_-]+$`. So a path can be
/// joined under a directory or an S3 prefix without escaping it. Paths built
/// by [`CollectionPath::parse`] (every new collection) also have segments
/// of at most 64 bytes that are none of `__root__`, `functions`, `env`;
/// [`CollectionPath::parse_stored`] accepts those too, as the Go version
/// stored them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CollectionPath(String);

impl CollectionPath {
    /// The root collection.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Normalises (trim, strip `/` at both ends, lowercase) and validates `raw`
    /// with today's grammar (see the type's docs).
    pub fn parse(raw: &str) -> Result<Self, PortError> {
        Self::normalise(raw, true)
    }

    /// Normalises and validates a path the Go version could have stored:
    /// like [`CollectionPath::parse`] but the reserved segments (`__root__`,
    /// `functions`, `env`) and segments longer than
    /// 64 bytes (within the 256 bytes of the whole
    /// path) are accepted. Used to address stored collections (listings,
    /// reads, invokes, env updates, deletes) and for new paths when legacy
    /// names are enabled. The characters stay `[a-z0-9_-]`, so such a path
    /// is as safe to join under a directory or a prefix as any other.
    pub fn parse_stored(raw: &str) -> Result<Self, PortError> {
        Self::normalise(raw, false)
    }

    /// [`CollectionPath::parse_stored`] when `legacy` (the setting
    /// `LOWCODE_FAAS_LEGACY_NAMES`), else [`CollectionPath::parse`]: the
    /// rule for a collection that is about to be created.
    pub fn parse_new(raw: &str, legacy: bool) -> Result<Self, PortError> {
        Self::normalise(raw, !legacy)
    }

    /// True when every segment follows today's grammar (false for a path
    /// only the Go version's grammar accepts).
    pub fn is_current_grammar(&self) -> bool {
        Self::parse(&self.0).is_ok()
    }

    fn normalise(raw: &str, current: bool) -> Result<Self, PortError> {
        let normalised = raw.trim().trim_matches('/').to_lowercase();
        if normalised.is_empty() {
            return Ok(Self::root());
        }
        if normalised.len() > MAX_COLLECTION_PATH_LEN {
            return Err(PortError::InvalidCollectionPath(format!(
                "path is longer than {MAX_COLLECTION_PATH_LEN} bytes"
            )));
        }
        let segments: Vec<&str> = normalised.split('/').collect();
        if segments.len() > MAX_COLLECTION_SEGMENTS {
            return Err(PortError::InvalidCollectionPath(format!(
                "path has more than {MAX_COLLECTION_SEGMENTS} segments"
            )));
        }
        for segment in &segments {
            if segment.is_empty() {
                return Err(PortError::InvalidCollectionPath("empty segment ('//') in path".into()));
            }
            if !segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            {
                return Err(PortError::InvalidCollectionPath(format!(
                    "segment '{}' must match ^[a-z0-9_-]+$",
                    truncate_for_message(segment)
                )));
            }
            if !current {
                continue;
            }
            if RESERVED_SEGMENTS.contains(segment) {
                return Err(PortError::InvalidCollectionPath(format!(
                    "segment '{segment}' is reserved"
                )));
            }
            if segment.len() > MAX_COLLECTION_SEGMENT_LEN {
                return Err(PortError::InvalidCollectionPath(format!(
                    "segment '{}' is longer than {MAX_COLLECTION_SEGMENT_LEN} bytes",
                    truncate_for_message(segment)
                )));
            }
        }
        Ok(Self(normalised))
    }

    /// True for the root collection.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as a string; `""` for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `None` for the root, else the path (the wire form that omits the root).
    pub fn as_option(&self) -> Option<&str> {
        (!self.is_root()).then_some(self.0.as_str())
    }

    /// The segments, empty for the root.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The parent collection; `None` for the root.
    pub fn parent(&self) -> Option<CollectionPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => Self(self.0[..i].to_owned()),
            None => Self::root(),
        })
    }

    /// The root, every ancestor and the path itself, root first.
    pub fn lineage(&self) -> Vec<CollectionPath> {
        let mut out = vec![Self::root()];
        let mut acc = String::new();
        for segment in self.segments() {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(segment);
            out.push(Self(acc.clone()));
        }
        out
    }

    /// True when `self` equals `prefix` or lies below it (`a/b` starts with `a`).
    pub fn starts_with(&self, prefix: &CollectionPath) -> bool {
        prefix.is_root()
            || self.0 == prefix.0
            || (self.0.starts_with(&prefix.0) && self.0.as_bytes().get(prefix.0.len()) == Some(&b'/'))
    }

    /// The child path `self/segment`: the segment is normalised and
    /// validated like a one-segment path, and must not be empty, so the
    /// child always lies one level below `self`.
    /// The segment follows today's grammar; `self` may be a stored path.
    pub fn child(&self, segment: &str) -> Result<CollectionPath, PortError> {
        self.child_with(segment, true)
    }

    /// Like [`CollectionPath::child`] with a segment the Go version could
    /// have stored ([`CollectionPath::parse_stored`]).
    pub fn child_stored(&self, segment: &str) -> Result<CollectionPath, PortError> {
        self.child_with(segment, false)
    }

    fn child_with(&self, segment: &str, current: bool) -> Result<CollectionPath, PortError> {
        if segment.contains('/') {
            return Err(PortError::InvalidCollectionPath(format!(
                "segment '{}' contains '/'",
                truncate_for_message(segment)
            )));
        }
        let segment = Self::normalise(segment, current)?;
        if segment.is_root() {
            return Err(PortError::InvalidCollectionPath("empty segment in path".into()));
        }
        if self.is_root() {
            Ok(segment)
        } else {
            // Both parts are valid: the join only needs the checks of the
            // whole path (length, number of segments).
            Self::normalise(&format!("{}/{}", self.0, segment.0), false)
        }
    }
}

impl fmt::Display for CollectionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str("/")
        } else {
            f.write_str(&self.0)
        }
    }
}

impl TryFrom<String> for CollectionPath {
    type Error = PortError;
    /// [`CollectionPath::parse_stored`]: a stored legacy path reads back.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse_stored(&value)
    }
}

impl From<CollectionPath> for String {
    fn from(value: CollectionPath) -> Self {
        value.0
    }
}

/// A deployment version: an integer >= 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Version(u64);

impl Version {
    /// The first version of every function.
    pub const FIRST: Version = Version(1);

    /// Validates a number.
    pub fn new(n: u64) -> Result<Self, PortError> {
        if n == 0 {
            return Err(PortError::InvalidVersion("version must be >= 1".into()));
        }
        if n > Self::MAX {
            return Err(PortError::InvalidVersion(format!("version must be <= {}", Self::MAX)));
        }
        Ok(Self(n))
    }

    /// The largest version (what a signed 64-bit column holds).
    pub const MAX: u64 = i64::MAX as u64;

    /// Parses a query-string value such as `"3"`.
    pub fn parse(raw: &str) -> Result<Self, PortError> {
        let n: u64 = raw.trim().parse().map_err(|_| {
            PortError::InvalidVersion(format!("'{}' is not an integer >= 1", truncate_for_message(raw)))
        })?;
        Self::new(n)
    }

    /// Validates a JSON value: an integer >= 1 (a float such as `2.0` is refused).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, PortError> {
        match value.as_u64() {
            Some(n) => Self::new(n),
            None => Err(PortError::InvalidVersion(format!(
                "{} is not an integer >= 1",
                truncate_for_message(&value.to_string())
            ))),
        }
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    pub fn next(self) -> Version {
        Version(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<u64> for Version {
    type Error = PortError;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Version> for u64 {
    fn from(value: Version) -> Self {
        value.0
    }
}

/// The id of one run: `run-` followed by a UUIDv7 (time-ordered, 74 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A fresh, unguessable run id.
    pub fn generate() -> Self {
        Self(format!("run-{}", uuid::Uuid::now_v7()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute `http` or `https` URL to fetch a source from.
///
/// Only the scheme and shape are checked here; which addresses may be
/// reached is the fetcher's rule (docs/api.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUrl(url::Url);

impl SourceUrl {
    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<Self, PortError> {
        let url = url::Url::parse(raw.trim())
            .map_err(|e| PortError::InvalidSourceUrl(format!("'{}': {e}", truncate_for_message(raw))))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(PortError::InvalidSourceUrl(format!(
                    "scheme '{other}' is not allowed (http or https only)"
                )))
            }
        }
        if url.host().is_none() {
            return Err(PortError::InvalidSourceUrl("URL has no host".into()));
        }
        Ok(Self(url))
    }

    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The URL as a string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// The language of a function. Only JavaScript (Node ESM) exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// A Node ESM module.
    #[default]
    Javascript,
}

impl Language {
    /// `None`, `""` or `javascript` in any case (the Go version lowercased
    /// it) is JavaScript; `Some(other)` is `Err(other)`.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw.map(str::trim) {
            None | Some("") => Ok(Language::Javascript),
            Some(name) if name.eq_ignore_ascii_case("javascript") => Ok(Language::Javascript),
            Some(other) => Err(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Javascript => "javascript",
        }
    }
}

/// Cuts user text that goes back into an error message to a readable length.
pub(crate) fn truncate_for_message(raw: &str) -> String {
    const MAX: usize = 80;
    if raw.len() <= MAX {
        return raw.to_owned();
    }
    let mut end = MAX;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &raw[..end])
}

#[cfg(test)]
mod tests;
