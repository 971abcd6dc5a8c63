//! Env maps (faas-ports `EnvMap`) from request JSON and from stored JSON:
//! no panic; what parses obeys every rule; the serde form round-trips.
#![no_main]
use std::collections::BTreeMap;

use faas_ports::{EnvMap, MAX_ENV_ENTRIES, MAX_ENV_KEY_LEN, MAX_ENV_VALUE_LEN, MAX_SEALED_ENV_VALUE_LEN};
use libfuzzer_sys::fuzz_target;

fn assert_valid(env: &EnvMap) {
    assert!(env.len() <= MAX_ENV_ENTRIES);
    for (key, value) in env.iter() {
        assert!(!key.is_empty() && key.len() <= MAX_ENV_KEY_LEN);
        assert!(
            key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'),
            "{key:?}"
        );
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{key:?}");
        assert!(key != "PORT" && !key.starts_with("LOWCODE_FAAS_"), "{key:?}");
        assert!(
            !matches!(key, "PATH" | "NODE_OPTIONS" | "NODE_PATH") && !key.starts_with("LD_"),
            "{key:?}"
        );
        // A map read from storage may hold values sealed at rest (longer).
        let cap = if EnvMap::is_sealed_value(value) { MAX_SEALED_ENV_VALUE_LEN } else { MAX_ENV_VALUE_LEN };
        assert!(value.len() <= cap);
        assert!(!value.contains(['\0', '\r', '\n']), "{value:?}");
    }
    // The serde form (what stores write) reads back to the same entries (the
    // record of ignored stored keys is not serialised, by design).
    // Sealed values only come back through a store's reader, not serde.
    let json = serde_json::to_vec(env).expect("an env map serialises");
    if !env.iter().any(|(_, v)| EnvMap::is_sealed_value(v)) {
        let back = serde_json::from_slice::<EnvMap>(&json).expect("its serde form reads back");
        assert_eq!(back.as_map(), env.as_map());
    }
    let parsed = EnvMap::parse_stored(env.as_map().clone()).expect("its entries parse");
    assert_eq!(parsed.as_map(), env.as_map());
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let strict = EnvMap::from_json(&value);
    if let Ok(env) = &strict {
        assert_valid(env);
    }
    // Serde's path (the typed bodies) agrees with the JSON path.
    if let Ok(env) = serde_json::from_value::<EnvMap>(value.clone()) {
        assert_eq!(strict.as_ref().ok(), Some(&env));
    }
    // The tolerant reader of stored data keeps a valid subset and names the rest.
    match EnvMap::from_stored_json(value.clone()) {
        Ok((env, dropped)) => {
            assert_valid(&env);
            assert!(dropped.windows(2).all(|w| w[0] <= w[1]), "dropped keys are sorted");
            if let serde_json::Value::Object(object) = &value {
                assert_eq!(env.len() + dropped.len(), object.len());
                for key in object.keys() {
                    assert!(env.get(key).is_some() != dropped.contains(key), "{key:?}");
                }
                if let Ok(strict) = &strict {
                    assert_eq!(strict.as_map(), env.as_map());
                    assert!(dropped.is_empty());
                }
            }
        }
        Err(found) => assert!(!value.is_object() && !value.is_null(), "{found}"),
    }
    if let serde_json::Value::Object(object) = &value {
        let strings: BTreeMap<String, String> = object
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect();
        let (kept, _) = EnvMap::parse_lenient(strings);
        assert_valid(&kept);
    }
});
