//! `.env.example` at the repository root names every variable the settings
//! know (`config::KEYS` and `config::OTHER_VARIABLES`) and nothing else, so
//! a team copying it (as they copied the Go version's) never sets a name
//! that is silently unknown, nor misses one that exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use faas_http::config::{env_name, ENV_PREFIX, KEYS, OTHER_VARIABLES};

/// Every `LOWCODE_FAAS_*` name assigned on a line, commented out or not
/// (`# LOWCODE_FAAS_X=…` or `LOWCODE_FAAS_X=…`).
fn names_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('#').trim_start();
            let (name, _) = line.split_once('=')?;
            (name.starts_with(ENV_PREFIX) && !name.contains(char::is_whitespace)).then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn env_example_lists_every_known_variable_once_and_nothing_unknown() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example");
    let text = std::fs::read_to_string(path).expect(".env.example at the repository root");
    let listed = names_in(&text);
    let unique: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), listed.len(), "a variable is listed twice: {listed:?}");

    let known: BTreeSet<String> = KEYS
        .iter()
        .map(|k| env_name(k))
        .chain(OTHER_VARIABLES.iter().map(|v| (*v).to_owned()))
        .collect();
    let known: BTreeSet<&str> = known.iter().map(String::as_str).collect();
    let missing: Vec<&&str> = known.difference(&unique).collect();
    let unknown: Vec<&&str> = unique.difference(&known).collect();
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
    assert!(
        unknown.is_empty(),
        ".env.example names variables no setting reads: {unknown:?}"
    );
}

#[test]
fn names_are_read_from_assignments_only() {
    let text = "# LOWCODE_FAAS_A=1\nLOWCODE_FAAS_B=\n#   LOWCODE_FAAS_C=x=y\n# see LOWCODE_FAAS_D for more\nOTHER=1\n";
    assert_eq!(names_in(text), ["LOWCODE_FAAS_A", "LOWCODE_FAAS_B", "LOWCODE_FAAS_C"]);
}
