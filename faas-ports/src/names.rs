//! Validated names: function names, collection paths, versions, run ids, source URLs.
//!
//! Each type is built only through `parse` (or `TryFrom<String>` for serde), so
//! a value of the type always satisfies the rules of docs/api.md.

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
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
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
    /// [`MAX_COLLECTION_SEGMENT_LEN`] (within the 256 bytes of the whole
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
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
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
mod tests {
    use super::*;

    fn check_name(raw: &str, ok: bool) {
        assert_eq!(FunctionName::parse(raw).is_ok(), ok, "name {raw:?}");
    }

    #[test]
    fn function_names() {
        for good in ["a", "hello", "Hello_World-2", "env", "functions", &"a".repeat(64)] {
            check_name(good, true);
        }
        for bad in [
            "",
            "1abc",
            "_a",
            "-a",
            "a.b",
            "a/b",
            "../etc",
            "..",
            "a b",
            "é",
            &"a".repeat(65),
            "a\0",
        ] {
            check_name(bad, false);
        }
    }

    #[test]
    fn stored_names_accept_what_the_go_version_stored() {
        for good in [
            "my.func",
            "a.b.c",
            ".hidden",
            "with space",
            "Grüße",
            "函数",
            "1abc",
            "_a",
            "a.lock",
            "x.env",
            &"a".repeat(MAX_STORED_FUNCTION_NAME_LEN),
        ] {
            let name = FunctionName::parse_stored(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
            assert_eq!(name.as_str(), good);
            assert!(!name.is_current_grammar() || FunctionName::parse(good).is_ok());
        }
        for bad in [
            "",
            ".",
            "..",
            "a..b",
            "../etc",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            "a\u{7f}",
            " a",
            "a ",
            "\ta",
            &"a".repeat(MAX_STORED_FUNCTION_NAME_LEN + 1),
        ] {
            let err = FunctionName::parse_stored(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_NAME", "{bad:?}");
        }
        assert!(
            FunctionName::parse("my.func").is_err(),
            "new names keep today's grammar"
        );
        assert!(FunctionName::parse_new("my.func", true).is_ok());
        assert!(FunctionName::parse_new("my.func", false).is_err());
        assert!(FunctionName::parse_stored("hello").unwrap().is_current_grammar());
        assert!(!FunctionName::parse_stored("my.func").unwrap().is_current_grammar());
    }

    /// A small deterministic generator (xorshift) for the fuzz-style tests.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn string(&mut self) -> String {
            // Weighted towards the characters that matter for paths.
            const ALPHABET: [&str; 24] = [
                "a", "Z", "0", "_", "-", ".", ".", "/", "\\", "\0", " ", "\t", "\n", "é", "函", "%2F", "..", "~", "$",
                "*", ":", "\u{202e}", "\u{7f}", "\u{85}",
            ];
            let len = (self.next() % 12) as usize;
            (0..len)
                .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize])
                .collect()
        }
    }

    /// Every accepted name, joined under a directory as its files are, or
    /// into an S3 key, stays one segment below that directory or prefix.
    #[test]
    fn fuzzed_names_never_leave_their_directory() {
        use std::path::{Component, Path};
        let mut gen = Gen(0x9E37_79B9_7F4A_7C15);
        let mut accepted = 0;
        for _ in 0..200_000 {
            let raw = gen.string();
            let strict = FunctionName::parse(&raw);
            let Ok(name) = FunctionName::parse_stored(&raw) else {
                assert!(strict.is_err(), "{raw:?}: today's grammar is within the stored one");
                continue;
            };
            accepted += 1;
            assert_eq!(strict.is_ok(), name.is_current_grammar(), "{raw:?}");
            for file in [name.to_string(), format!("{name}.mjs"), format!("{name}.meta.json")] {
                let joined = Path::new("/data/functions").join(&file);
                let parts: Vec<Component<'_>> = joined.components().collect();
                assert_eq!(parts.len(), 4, "{raw:?} -> {joined:?}");
                assert!(matches!(parts[3], Component::Normal(_)), "{raw:?} -> {joined:?}");
                assert!(joined.starts_with("/data/functions"), "{raw:?}");
            }
            let key = format!("functions/{name}/v1.mjs");
            let segments: Vec<&str> = key.split('/').collect();
            assert_eq!(segments.len(), 3, "{raw:?}");
            assert!(
                segments.iter().all(|s| !s.is_empty() && *s != "." && *s != ".."),
                "{raw:?}"
            );
            assert!(!raw.contains(['\0', '\\']) && raw.trim() == raw, "{raw:?}");
        }
        assert!(accepted > 1_000, "the generator reaches accepted names ({accepted})");
    }

    fn check_path(raw: &str, want: Option<&str>) {
        let got = CollectionPath::parse(raw).ok();
        assert_eq!(got.as_ref().map(|p| p.as_str()), want, "path {raw:?}");
    }

    #[test]
    fn collection_paths() {
        check_path("", Some(""));
        check_path("/", Some(""));
        check_path("  /Team/API/ ", Some("team/api"));
        check_path("a/b_c/d-1", Some("a/b_c/d-1"));
        check_path("a//b", None);
        check_path("../a", None);
        check_path("a/./b", None);
        check_path("a/functions", None);
        check_path("env", None);
        check_path("__root__", None);
        check_path("a b", None);
        check_path("a\\b", None);
        check_path(&vec!["a"; 32].join("/"), Some(&vec!["a"; 32].join("/")));
        check_path(&vec!["a"; 33].join("/"), None);
        check_path(&"a".repeat(257), None);
        // One segment is at most 64 bytes (a 256-byte one was a file name
        // too long for the files storage: 503 instead of 400).
        check_path(&"a".repeat(64), Some(&"a".repeat(64)));
        check_path(&"a".repeat(65), None);
        check_path(&format!("b/{}", "a".repeat(65)), None);
    }

    #[test]
    fn stored_paths_accept_what_the_go_version_stored() {
        let long = "s".repeat(200);
        for raw in ["a/functions/b", "env", "__root__/x", "Team/ENV", long.as_str()] {
            assert!(CollectionPath::parse(raw).is_err(), "{raw}: not a new path");
            let p = CollectionPath::parse_stored(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(p.as_str(), raw.to_lowercase());
            assert!(!p.is_current_grammar());
            assert_eq!(CollectionPath::parse_new(raw, true).unwrap(), p);
            assert!(CollectionPath::parse_new(raw, false).is_err());
        }
        assert!(CollectionPath::parse_stored("team/api").unwrap().is_current_grammar());
        let too_long = "s".repeat(MAX_COLLECTION_PATH_LEN + 1);
        for bad in ["a/../b", "a/./b", "a.b", "a//b", "a\\b", "a\0b", "ä", too_long.as_str()] {
            assert!(CollectionPath::parse_stored(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_child_keeps_its_parents_grammar_and_checks_its_own() {
        let legacy = CollectionPath::parse_stored("a/functions").unwrap();
        assert_eq!(legacy.child("b").unwrap().as_str(), "a/functions/b");
        assert!(legacy.child("env").is_err(), "a new child follows today's grammar");
        assert_eq!(legacy.child_stored("env").unwrap().as_str(), "a/functions/env");
        assert!(legacy.child_stored("a.b").is_err());
        assert!(legacy.child_stored("").is_err());
    }

    #[test]
    fn reserved_segment_is_named_in_message() {
        let err = CollectionPath::parse("a/functions/b").unwrap_err();
        assert_eq!(err.code(), "INVALID_COLLECTION_PATH");
        assert!(err.to_string().contains("functions"));
    }

    #[test]
    fn lineage_and_parent() {
        let p = CollectionPath::parse("a/b/c").unwrap();
        let lineage: Vec<String> = p.lineage().into_iter().map(String::from).collect();
        assert_eq!(lineage, vec!["", "a", "a/b", "a/b/c"]);
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
        assert_eq!(
            CollectionPath::parse("a").unwrap().parent(),
            Some(CollectionPath::root())
        );
        assert_eq!(CollectionPath::root().parent(), None);
        assert!(p.starts_with(&CollectionPath::parse("a/b").unwrap()));
        assert!(!CollectionPath::parse("ab")
            .unwrap()
            .starts_with(&CollectionPath::parse("a").unwrap()));
        assert!(p.starts_with(&CollectionPath::root()));
    }

    #[test]
    fn a_child_is_one_level_below_or_refused() {
        // Regression (the `names` fuzz target's "a child lies one level
        // below" property): an empty or blank segment gave the parent
        // itself back as its own child.
        let team = CollectionPath::parse("team").unwrap();
        for blank in ["", " ", "\t"] {
            assert_eq!(
                team.child(blank).unwrap_err().code(),
                "INVALID_COLLECTION_PATH",
                "{blank:?}"
            );
            assert!(CollectionPath::root().child(blank).is_err(), "{blank:?}");
        }
        assert_eq!(team.child("API").unwrap().as_str(), "team/api");
        assert_eq!(team.child("api").unwrap().parent(), Some(team.clone()));
        assert!(team.child(" api").is_ok() == CollectionPath::root().child(" api").is_ok());
        assert!(team.child("a/b").is_err() && team.child("env").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(Version::parse("3").unwrap().get(), 3);
        assert!(Version::parse("0").is_err());
        assert!(Version::parse("-1").is_err());
        assert!(Version::parse("x").is_err());
        assert!(Version::from_json(&serde_json::json!(2.5)).is_err());
        assert!(Version::from_json(&serde_json::json!("2")).is_err());
        assert_eq!(Version::from_json(&serde_json::json!(2)).unwrap().get(), 2);
        assert!(Version::parse("9223372036854775807").is_ok());
        assert_eq!(
            Version::parse("9223372036854775808").unwrap_err().code(),
            "INVALID_VERSION"
        );
    }

    #[test]
    fn run_ids_are_unique_and_prefixed() {
        let a = RunId::generate();
        let b = RunId::generate();
        assert!(a.as_str().starts_with("run-"));
        assert_ne!(a, b);
    }

    #[test]
    fn source_urls() {
        assert!(SourceUrl::parse("https://example.com/a.mjs").is_ok());
        assert!(SourceUrl::parse("http://127.0.0.1:8080/x").is_ok());
        assert_eq!(
            SourceUrl::parse("file:///etc/passwd").unwrap_err().code(),
            "INVALID_SOURCE_URL"
        );
        assert!(SourceUrl::parse("not a url").is_err());
    }

    #[test]
    fn languages() {
        assert_eq!(Language::parse(None), Ok(Language::Javascript));
        assert_eq!(Language::parse(Some("")), Ok(Language::Javascript));
        assert_eq!(Language::parse(Some("python")), Err("python".into()));
        assert_eq!(Language::parse(Some(" JavaScript ")), Ok(Language::Javascript));
        assert_eq!(Language::parse(Some("JAVASCRIPT")), Ok(Language::Javascript));
        assert_eq!(Language::parse(Some("java script")), Err("java script".into()));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn segment() -> impl Strategy<Value = String> {
            "[a-z0-9_-]{1,12}".prop_filter("not reserved", |s| !RESERVED_SEGMENTS.contains(&s.as_str()))
        }

        fn valid_path() -> impl Strategy<Value = String> {
            proptest::collection::vec(segment(), 0..8).prop_map(|segments| segments.join("/"))
        }

        proptest! {
            #[test]
            fn a_name_parses_exactly_when_it_matches_the_pattern(raw in ".{0,70}") {
                let want = raw.len() <= MAX_FUNCTION_NAME_LEN
                    && raw.starts_with(|c: char| c.is_ascii_alphabetic())
                    && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                prop_assert_eq!(FunctionName::parse(&raw).is_ok(), want);
            }

            #[test]
            fn valid_names_round_trip(raw in "[A-Za-z][A-Za-z0-9_-]{0,63}") {
                let name = FunctionName::parse(&raw).unwrap();
                prop_assert_eq!(name.as_str(), raw.as_str());
                prop_assert_eq!(FunctionName::parse(&name.to_string()).unwrap(), name.clone());
                let json = serde_json::to_string(&name).unwrap();
                prop_assert_eq!(serde_json::from_str::<FunctionName>(&json).unwrap(), name);
            }

            #[test]
            fn valid_paths_parse_in_any_case_and_with_slashes(path in valid_path(), upper: bool, pad: bool) {
                let mut raw = if upper { path.to_uppercase() } else { path.clone() };
                if pad {
                    raw = format!(" /{raw}/ ");
                }
                let parsed = CollectionPath::parse(&raw).unwrap();
                prop_assert_eq!(parsed.as_str(), path.as_str());
                prop_assert_eq!(parsed.lineage().len(), parsed.segments().count() + 1);
            }

            #[test]
            fn any_path_that_parses_is_normalised_and_confined(raw in "[ -~\u{80}-\u{10FFFF}]{0,80}") {
                if let Ok(path) = CollectionPath::parse(&raw) {
                    let s = path.as_str();
                    prop_assert!(!s.contains("..") && !s.contains('\\') && !s.contains("//"));
                    prop_assert!(!s.starts_with('/') && !s.ends_with('/'));
                    for segment in path.segments() {
                        prop_assert!(segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
                        prop_assert!(!RESERVED_SEGMENTS.contains(&segment));
                    }
                    prop_assert_eq!(CollectionPath::parse(s).unwrap(), path.clone());
                    prop_assert_eq!(CollectionPath::parse(&path.to_string()).unwrap(), path);
                }
            }

            #[test]
            fn versions_round_trip(n in 1u64..=Version::MAX) {
                let v = Version::new(n).unwrap();
                prop_assert_eq!(Version::parse(&v.to_string()).unwrap(), v);
                prop_assert_eq!(Version::from_json(&serde_json::json!(n)).unwrap(), v);
            }
        }
    }
}
