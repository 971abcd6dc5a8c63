//! The TOML settings file (faas-http `Settings`, `LOWCODE_FAAS_CONFIG`):
//! no panic on any text; accepted settings keep their cross-checks.
#![no_main]
use faas_http::config::MAX_DURATION_MS;
use faas_http::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(settings) = Settings::from_toml_str(text) else {
        return;
    };
    let limits = &settings.limits;
    assert!(limits.default_timeout <= limits.max_timeout);
    assert!(limits.max_timeout.as_millis() <= u128::from(MAX_DURATION_MS));
    assert!(limits.default_timeout.as_millis() >= 1);
    assert!(settings.max_body_bytes > 0);
    assert!(settings.shutdown_grace.as_millis() <= u128::from(MAX_DURATION_MS));
    assert!(settings.storage_timeout.as_millis() <= u128::from(MAX_DURATION_MS));
});
