//! Tests of the validated names.

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
            "a", "Z", "0", "_", "-", ".", ".", "/", "\\", "\0", " ", "\t", "\n", "é", "函", "%2F", "..", "~", "$", "*",
            ":", "\u{202e}", "\u{7f}", "\u{85}",
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
fn stored_legacy_names_and_paths_round_trip_through_serde() {
    let long = "s".repeat(200);
    for raw in ["a/functions/b", "env", "__root__/x", "team/api", "", long.as_str()] {
        let p = CollectionPath::parse_stored(raw).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<CollectionPath>(&json).unwrap(), p, "{raw}");
    }
    for raw in ["my.func", "hello"] {
        let n = FunctionName::parse_stored(raw).unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<FunctionName>(&json).unwrap(), n, "{raw}");
    }
    // Serde still refuses what no rule allows.
    assert!(serde_json::from_str::<CollectionPath>(r#""a/../b""#).is_err());
    assert!(serde_json::from_str::<FunctionName>(r#""a/b""#).is_err());
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
