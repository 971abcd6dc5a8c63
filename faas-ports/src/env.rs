//! Validated environment maps (docs/api.md).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::truncate_for_message;
use crate::PortError;

/// Maximum bytes of an env key.
pub const MAX_ENV_KEY_LEN: usize = 256;
/// Maximum bytes of an env value.
pub const MAX_ENV_VALUE_LEN: usize = 4096;
/// Maximum entries in one env map.
pub const MAX_ENV_ENTRIES: usize = 256;
/// Prefix reserved for variables the platform sets.
pub const RESERVED_ENV_PREFIX: &str = "LOWCODE_FAAS_";
/// Variables that change how the runtime itself starts or loads code
/// (injected code before any handler, a broken `PATH`): refused in every env
/// layer.
pub const RUNTIME_ENV_NAMES: [&str; 3] = ["PATH", "NODE_OPTIONS", "NODE_PATH"];
/// Prefixes of such variables (the dynamic loader's `LD_PRELOAD`, `LD_LIBRARY_PATH` …).
pub const RUNTIME_ENV_PREFIXES: [&str; 1] = ["LD_"];
/// Prefix of a value sealed (encrypted) at rest by the storage decorator of
/// `faas-adapters` (`lcfaas:enc:v1:<key id>:<ciphertext>`). Request values
/// may not start with it, so a stored value that does is always a sealed one.
pub const SEALED_ENV_PREFIX: &str = "lcfaas:enc:";
/// Maximum bytes of a sealed value as a store holds it (a sealed
/// [`MAX_ENV_VALUE_LEN`]-byte value is about 5.6 KiB).
pub const MAX_SEALED_ENV_VALUE_LEN: usize = 8192;
/// What a redacted env shows in place of every value
/// (`LOWCODE_FAAS_REDACT_ENV`, `Debug`).
pub const REDACTED_ENV_VALUE: &str = "***";

/// Where a map comes from: a request (plain values only) or a store
/// (sealed values allowed).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Request,
    Stored,
}

/// An environment map of a collection, a function or a request.
///
/// Invariants: at most 256 entries; keys match `^[A-Za-z_][A-Za-z0-9_]*$`,
/// at most 256 bytes, are not `PORT` and do not start with `LOWCODE_FAAS_`,
/// and are none of [`RUNTIME_ENV_NAMES`] nor start with one of
/// [`RUNTIME_ENV_PREFIXES`];
/// values are at most 4096 bytes with no NUL, CR or LF and do not start
/// with [`SEALED_ENV_PREFIX`] (a map read back from a store may hold sealed
/// values instead, see [`EnvMap::parse_stored`]).
///
/// A map read from storage ([`EnvMap::from_stored_json`]) also remembers
/// the keys of the stored entries that break these rules
/// ([`EnvMap::ignored_keys`]): they are not part of the map (never run
/// with, never written back) but are reported, so nothing disappears
/// silently. They are not serialised.
///
/// Its `Debug` shows the keys only (values as [`REDACTED_ENV_VALUE`]), so an
/// env never reaches a log through `{:?}`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct EnvMap(BTreeMap<String, String>, Vec<String>);

impl EnvMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates a map.
    pub fn parse(map: BTreeMap<String, String>) -> Result<Self, PortError> {
        Self::parse_from(map, Origin::Request)
    }

    /// Validates a map as a store holds it: like [`EnvMap::parse`], but a
    /// value may also be a sealed value ([`SEALED_ENV_PREFIX`], at most
    /// [`MAX_SEALED_ENV_VALUE_LEN`] bytes). Only the sealing decorator of a
    /// store builds these; values reaching a run are always plain.
    pub fn parse_stored(map: BTreeMap<String, String>) -> Result<Self, PortError> {
        Self::parse_from(map, Origin::Stored)
    }

    /// True when `value` is a sealed (encrypted at rest) value.
    pub fn is_sealed_value(value: &str) -> bool {
        value.starts_with(SEALED_ENV_PREFIX)
    }

    fn parse_from(map: BTreeMap<String, String>, origin: Origin) -> Result<Self, PortError> {
        if map.len() > MAX_ENV_ENTRIES {
            return Err(PortError::InvalidEnv(format!(
                "{} entries, at most {MAX_ENV_ENTRIES} allowed",
                map.len()
            )));
        }
        for (key, value) in &map {
            check_key(key)?;
            check_value(key, value, origin)?;
        }
        Ok(Self(map, Vec::new()))
    }

    /// Validates a JSON value: `null` is empty, an object of strings is parsed,
    /// anything else is `INVALID_ENV`.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, PortError> {
        match value {
            serde_json::Value::Null => Ok(Self::new()),
            serde_json::Value::Object(object) => {
                let mut map = BTreeMap::new();
                for (key, value) in object {
                    let serde_json::Value::String(s) = value else {
                        return Err(PortError::InvalidEnv(format!(
                            "value of '{}' must be a string",
                            truncate_for_message(key)
                        )));
                    };
                    map.insert(key.clone(), s.clone());
                }
                Self::parse(map)
            }
            _ => Err(PortError::InvalidEnv("env must be an object of strings".into())),
        }
    }

    /// Like [`EnvMap::parse_stored`] but drops invalid entries instead of
    /// failing, returning the names of the dropped keys. For data written by
    /// older implementations, which checked less.
    pub fn parse_lenient(map: BTreeMap<String, String>) -> (Self, Vec<String>) {
        let mut kept = BTreeMap::new();
        let mut dropped = Vec::new();
        for (key, value) in map {
            if kept.len() < MAX_ENV_ENTRIES
                && check_key(&key).is_ok()
                && check_value(&key, &value, Origin::Stored).is_ok()
            {
                kept.insert(key, value);
            } else {
                dropped.push(key);
            }
        }
        (Self(kept, Vec::new()), dropped)
    }

    /// Reads an env map as stored by this or an older implementation: `null`
    /// is empty; an object keeps its valid string entries and names the
    /// dropped keys (non-strings and entries that break the rules), sorted;
    /// anything else is `Err` naming the kind of JSON found instead (`an
    /// array` …), never its content, which may hold secrets and ends up in logs.
    /// The returned map remembers the dropped keys ([`EnvMap::ignored_keys`]).
    pub fn from_stored_json(value: serde_json::Value) -> Result<(Self, Vec<String>), String> {
        let object = match value {
            serde_json::Value::Null => return Ok((Self::new(), Vec::new())),
            serde_json::Value::Object(object) => object,
            serde_json::Value::Array(_) => return Err("an array".into()),
            serde_json::Value::String(_) => return Err("a string".into()),
            serde_json::Value::Number(_) => return Err("a number".into()),
            serde_json::Value::Bool(_) => return Err("a boolean".into()),
        };
        let mut strings = BTreeMap::new();
        let mut dropped = Vec::new();
        for (key, value) in object {
            match value {
                serde_json::Value::String(s) => {
                    strings.insert(key, s);
                }
                _ => dropped.push(key),
            }
        }
        let (mut env, invalid) = Self::parse_lenient(strings);
        dropped.extend(invalid);
        dropped.sort();
        env.1 = dropped.clone();
        Ok((env, dropped))
    }

    /// Keys of the stored env that break today's rules and were left out of
    /// this map (sorted; empty for every map not read from storage).
    pub fn ignored_keys(&self) -> &[String] {
        &self.1
    }

    /// The same entries, remembering `keys` as the ignored ones (for a
    /// decorator that rebuilds a map read from storage, e.g. after
    /// decrypting its values).
    pub fn with_ignored_keys(mut self, keys: &[String]) -> Self {
        self.1 = keys.to_vec();
        self
    }

    /// The same entries without the record of ignored keys (what a store
    /// writes and reads back).
    pub fn without_ignored_keys(mut self) -> Self {
        self.1.clear();
        self
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Looks a key up.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The underlying map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The keys with every value replaced by [`REDACTED_ENV_VALUE`].
    pub fn redacted(&self) -> BTreeMap<String, String> {
        redact(&self.0)
    }
}

/// `map` with every value replaced by [`REDACTED_ENV_VALUE`] (the keys kept).
pub fn redact(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.keys().map(|k| (k.clone(), REDACTED_ENV_VALUE.to_owned())).collect()
}

impl fmt::Debug for EnvMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EnvMap").field(&redact(&self.0)).finish()
    }
}

impl TryFrom<BTreeMap<String, String>> for EnvMap {
    type Error = PortError;
    fn try_from(value: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<EnvMap> for BTreeMap<String, String> {
    fn from(value: EnvMap) -> Self {
        value.0
    }
}

fn check_key(key: &str) -> Result<(), PortError> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok {
        return Err(PortError::InvalidEnv(format!(
            "key '{}' must match ^[A-Za-z_][A-Za-z0-9_]*$",
            truncate_for_message(key)
        )));
    }
    if key.len() > MAX_ENV_KEY_LEN {
        return Err(PortError::InvalidEnv(format!(
            "key '{}' is longer than {MAX_ENV_KEY_LEN} bytes",
            truncate_for_message(key)
        )));
    }
    if key == "PORT" || key.starts_with(RESERVED_ENV_PREFIX) {
        return Err(PortError::InvalidEnv(format!(
            "key '{}' is reserved",
            truncate_for_message(key)
        )));
    }
    if RUNTIME_ENV_NAMES.contains(&key) || RUNTIME_ENV_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return Err(PortError::InvalidEnv(format!(
            "key '{}' changes how the runtime starts and is not allowed",
            truncate_for_message(key)
        )));
    }
    Ok(())
}

fn check_value(key: &str, value: &str, origin: Origin) -> Result<(), PortError> {
    let sealed = EnvMap::is_sealed_value(value);
    if sealed && origin == Origin::Request {
        return Err(PortError::InvalidEnv(format!(
            "value of '{key}' starts with '{SEALED_ENV_PREFIX}', which is reserved for values encrypted at rest"
        )));
    }
    let max = if sealed {
        MAX_SEALED_ENV_VALUE_LEN
    } else {
        MAX_ENV_VALUE_LEN
    };
    if value.len() > max {
        return Err(PortError::InvalidEnv(format!(
            "value of '{key}' is longer than {max} bytes"
        )));
    }
    if value.contains(['\0', '\r', '\n']) {
        return Err(PortError::InvalidEnv(format!(
            "value of '{key}' contains NUL, CR or LF"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(value: serde_json::Value, ok: bool) {
        assert_eq!(EnvMap::from_json(&value).is_ok(), ok, "env {value}");
    }

    #[test]
    fn env_rules() {
        check(json!(null), true);
        check(json!({}), true);
        check(json!({"A": "1", "_b": "", "x_1": "y"}), true);
        check(json!({"1A": "x"}), false);
        check(json!({"A-B": "x"}), false);
        check(json!({"": "x"}), false);
        check(json!({"PORT": "1"}), false);
        for key in ["PATH", "NODE_OPTIONS", "NODE_PATH", "LD_PRELOAD", "LD_LIBRARY_PATH"] {
            let err = EnvMap::from_json(&json!({ key: "x" })).unwrap_err();
            assert_eq!(err.code(), "INVALID_ENV");
            assert!(err.to_string().contains(key), "{err}");
        }
        check(
            json!({"MY_PATH": "1", "NODE_ENV": "production", "OLD_PRELOAD": "1"}),
            true,
        );
        check(json!({"LOWCODE_FAAS_X": "1"}), false);
        check(json!({"A": 1}), false);
        check(json!({"A": "a\nb"}), false);
        check(json!({"A": "a\rb"}), false);
        check(json!({"A": "a\u{0}b"}), false);
        check(json!({"A": "x".repeat(4096)}), true);
        check(json!({"A": "x".repeat(4097)}), false);
        check(json!({ "K".repeat(256): "x" }), true);
        check(json!({ "K".repeat(257): "x" }), false);
        check(json!([]), false);
        check(json!("A=1"), false);
        let many: serde_json::Map<String, serde_json::Value> =
            (0..257).map(|i| (format!("K{i}"), json!("v"))).collect();
        check(serde_json::Value::Object(many), false);
    }

    #[test]
    fn stored_json_keeps_valid_strings_and_names_the_rest() {
        let (env, dropped) = EnvMap::from_stored_json(json!({"A": "1", "PORT": "2", "N": 3})).unwrap();
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.len(), 1);
        assert_eq!(dropped, vec!["N".to_owned(), "PORT".to_owned()]);
        assert_eq!(
            env.ignored_keys(),
            dropped.as_slice(),
            "the map remembers what it left out"
        );
        assert_eq!(
            serde_json::to_value(&env).unwrap(),
            json!({"A": "1"}),
            "ignored keys are never written back"
        );
        let (env, _) = EnvMap::from_stored_json(json!({"LOWCODE_FAAS_X": "1", "ÄPFEL": "2"})).unwrap();
        assert!(env.is_empty());
        assert_eq!(env.ignored_keys(), ["LOWCODE_FAAS_X", "ÄPFEL"]);
        assert!(EnvMap::from_json(&json!({"A": "1"})).unwrap().ignored_keys().is_empty());
        assert!(EnvMap::from_stored_json(json!(null)).unwrap().0.is_empty());
        assert_eq!(EnvMap::from_stored_json(json!(["s3cr3t"])).unwrap_err(), "an array");
        assert_eq!(EnvMap::from_stored_json(json!("s3cr3t")).unwrap_err(), "a string");
    }

    #[test]
    fn sealed_values_are_refused_in_requests_and_kept_from_stores() {
        let sealed = format!("{SEALED_ENV_PREFIX}v1:0011aabb:{}", "A".repeat(5600));
        let err = EnvMap::from_json(&json!({"K": "lcfaas:enc:v1:x:y"})).unwrap_err();
        assert_eq!(err.code(), "INVALID_ENV");
        assert!(err.to_string().contains("reserved"), "{err}");
        let map = BTreeMap::from([("K".to_owned(), sealed.clone())]);
        assert_eq!(
            EnvMap::parse_stored(map.clone()).unwrap().get("K"),
            Some(sealed.as_str())
        );
        let (env, dropped) = EnvMap::parse_lenient(map);
        assert_eq!(env.get("K"), Some(sealed.as_str()));
        assert!(dropped.is_empty());
        let too_long = BTreeMap::from([("K".to_owned(), "x".repeat(5000))]);
        assert!(EnvMap::parse_stored(too_long).is_err(), "plain values keep their limit");
        let huge = BTreeMap::from([("K".to_owned(), format!("{SEALED_ENV_PREFIX}{}", "A".repeat(8192)))]);
        assert!(EnvMap::parse_stored(huge).is_err());
        assert!(EnvMap::from_json(&json!({"K": "my lcfaas:enc: value"})).is_ok());
    }

    #[test]
    fn debug_and_redacted_show_keys_only() {
        let env = EnvMap::from_json(&json!({"API_KEY": "s3cr3t-value", "B": "other"})).unwrap();
        let debug = format!("{env:?} {env:#?}");
        assert!(!debug.contains("s3cr3t-value") && !debug.contains("other"), "{debug}");
        assert!(
            debug.contains("API_KEY") && debug.contains(REDACTED_ENV_VALUE),
            "{debug}"
        );
        assert_eq!(
            env.redacted(),
            BTreeMap::from([
                ("API_KEY".to_owned(), "***".to_owned()),
                ("B".to_owned(), "***".to_owned())
            ])
        );
    }

    #[test]
    fn lenient_parse_drops_bad_entries() {
        let map = BTreeMap::from([("GOOD".to_owned(), "1".to_owned()), ("PORT".to_owned(), "2".to_owned())]);
        let (env, dropped) = EnvMap::parse_lenient(map);
        assert_eq!(env.get("GOOD"), Some("1"));
        assert_eq!(dropped, vec!["PORT".to_owned()]);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn key() -> impl Strategy<Value = String> {
            "[A-Za-z_][A-Za-z0-9_]{0,20}".prop_filter("allowed", |k| check_key(k).is_ok())
        }

        proptest! {
            #[test]
            fn valid_maps_parse_and_round_trip(map in proptest::collection::btree_map(key(), "[^\\r\\n\\x00]{0,40}", 0..20)) {
                let env = EnvMap::parse(map.clone()).unwrap();
                prop_assert_eq!(env.as_map(), &map);
                let json = serde_json::to_value(&env).unwrap();
                prop_assert_eq!(EnvMap::from_json(&json).unwrap(), env.clone());
                prop_assert_eq!(serde_json::from_value::<EnvMap>(json.clone()).unwrap(), env.clone());
                prop_assert_eq!(EnvMap::from_stored_json(json).unwrap(), (env, Vec::new()));
            }

            #[test]
            fn lenient_reads_keep_exactly_the_valid_entries(map in proptest::collection::btree_map(".{0,12}", ".{0,12}", 0..20)) {
                let (env, dropped) = EnvMap::parse_lenient(map.clone());
                prop_assert_eq!(env.len() + dropped.len(), map.len());
                prop_assert!(EnvMap::parse_stored(env.as_map().clone()).is_ok());
                for (key, value) in &map {
                    let valid = check_key(key).is_ok() && check_value(key, value, Origin::Stored).is_ok();
                    prop_assert_eq!(env.get(key).is_some(), valid, "{:?}", key);
                    prop_assert_eq!(dropped.contains(key), !valid);
                }
                // The strict parse of a stored map accepts it exactly when nothing is dropped.
                prop_assert_eq!(EnvMap::parse_stored(map).is_ok(), dropped.is_empty());
            }
        }
    }
}
