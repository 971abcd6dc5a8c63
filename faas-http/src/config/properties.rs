//! Property tests of the TOML settings file (`Settings::from_toml_str`).

use proptest::prelude::*;

use super::*;

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("[1, 2]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("1.5".to_owned()),
    ]
}

#[test]
fn a_file_sets_what_the_variables_set() {
    let s = Settings::from_toml_str("listen = \"127.0.0.1:7\"\nruntime = \"process\"\nmax_body_bytes = 99\n").unwrap();
    assert_eq!(s.listen.port(), 7);
    assert_eq!(s.runtime.kind, RuntimeKind::Process);
    assert_eq!(s.max_body_bytes, 99);
    assert_eq!(Settings::from_toml_str("").unwrap().max_body_bytes, 6 * 1024 * 1024);
    let err = Settings::from_toml_str("lisen = \":1\"").unwrap_err().to_string();
    assert!(err.contains("unknown setting 'lisen'"), "{err}");
    assert!(Settings::from_toml_str("listen = [").is_err());
}

proptest! {
    #[test]
    fn any_line_of_any_key_is_accepted_or_refused_without_panic(
        key in prop_oneof![proptest::sample::select(KEYS.to_vec()).prop_map(str::to_owned), "[a-z_]{1,12}"],
        value in toml_value(),
    ) {
        if let Ok(settings) = Settings::from_toml_str(&format!("{key} = {value}\n")) {
            prop_assert!(KEYS.contains(&key.as_str()));
            prop_assert!(settings.limits.default_timeout <= settings.limits.max_timeout);
            prop_assert!(settings.max_body_bytes > 0);
        }
    }

    #[test]
    fn numbers_read_back_exactly(n in 1u64..=i64::MAX as u64) {
        let s = Settings::from_toml_str(&format!("max_body_bytes = {n}\nfunction_cache_size = {n}\n")).unwrap();
        prop_assert_eq!(s.max_body_bytes, n);
        prop_assert_eq!(s.function_cache_size as u64, n);
    }

    #[test]
    fn durations_are_bounded(ms in 0u64..=2 * MAX_DURATION_MS) {
        let got = Settings::from_toml_str(&format!("shutdown_grace_ms = {ms}\n"));
        if (1..=MAX_DURATION_MS).contains(&ms) {
            prop_assert_eq!(got.unwrap().shutdown_grace.as_millis(), u128::from(ms));
        } else {
            let err = got.unwrap_err().to_string();
            prop_assert!(err.contains("LOWCODE_FAAS_SHUTDOWN_GRACE_MS"), "{}", err);
        }
    }
}
