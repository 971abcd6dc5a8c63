//! The data files and names of the `files` storage, including the Go
//! implementation's legacy layout (faas-adapters `fs::layout`): no panic;
//! meta files give a version >= 1; env files keep exactly their valid string
//! entries and name the rest; a file or directory name that is accepted is
//! a valid name that cannot leave its directory.
#![no_main]
use faas_adapters::fuzzing::{collection_of_dir, function_of_file, parse_env_file, parse_meta_file};
use faas_ports::{CollectionPath, EnvMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(version) = parse_meta_file(data) {
        assert!(version.get() >= 1);
    }
    match parse_env_file(data) {
        Ok((env, dropped)) => {
            // What was kept is valid as stored data (the record of dropped
            // keys is not part of the entries).
            let again = EnvMap::parse_stored(env.as_map().clone()).expect("the kept entries are valid");
            assert_eq!(again.as_map(), env.as_map());
            assert!(dropped.windows(2).all(|w| w[0] <= w[1]));
            let value: serde_json::Value = serde_json::from_slice(data).expect("it parsed as JSON");
            let keys = value.as_object().map_or(0, |o| o.len());
            assert_eq!(env.len() + dropped.len(), keys);
            for key in &dropped {
                assert!(env.get(key).is_none());
            }
        }
        Err(reason) => assert!(!reason.is_empty()),
    }

    let Ok(name) = std::str::from_utf8(data) else { return };
    match function_of_file(name) {
        Some(Some(function)) => {
            assert_eq!(format!("{function}.mjs"), name);
            // Names the Go version could store (dots included) but never a
            // separator, a NUL, `..` or `.`: the file stays in its directory.
            let f = function.as_str();
            assert!(!f.contains(['/', '\\', '\0']) && !f.contains("..") && f != ".");
        }
        Some(None) => assert!(name.ends_with(".mjs")),
        None => assert!(!name.ends_with(".mjs")),
    }
    for parent in [
        CollectionPath::root(),
        CollectionPath::parse("team/api").expect("a valid path"),
    ] {
        if let Some(child) = collection_of_dir(&parent, name) {
            assert_eq!(child.segments().last(), Some(name));
            assert_eq!(child.parent().as_ref(), Some(&parent));
            assert!(!name.contains(['/', '.', '\\', '\0']) && !name.is_empty());
            // Segments the Go version stored are collections (`env`, `__root__`
            // below the root), except the layout's own folders: `functions`
            // anywhere, `__root__` right below the root (docs/api.md §2.2).
            assert_ne!(name, "functions");
            assert!(!(parent.is_root() && name == "__root__"));
        }
    }
});
