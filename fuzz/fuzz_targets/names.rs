//! Function names, collection paths, versions and source URLs (faas-ports
//! newtypes): no panic; a name or path that parses can never leave a
//! directory or an S3 prefix; parse → render → parse is the identity.
#![no_main]
use faas_ports::{CollectionPath, FunctionName, SourceUrl, Version, RESERVED_SEGMENTS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };

    if let Ok(name) = FunctionName::parse(raw) {
        let s = name.as_str();
        assert_eq!(s, raw, "a name is never normalised");
        assert!(!s.is_empty() && s.len() <= 64);
        assert!(s.starts_with(|c: char| c.is_ascii_alphabetic()));
        assert!(
            s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{s:?}"
        );
        assert_eq!(FunctionName::parse(&name.to_string()).ok(), Some(name.clone()));
        let json = serde_json::to_string(&name).expect("a name serialises");
        assert_eq!(serde_json::from_str::<FunctionName>(&json).ok(), Some(name));
    }

    if let Ok(path) = CollectionPath::parse(raw) {
        let s = path.as_str();
        assert!(s.len() <= 256, "{s:?}");
        assert!(!s.starts_with('/') && !s.ends_with('/'));
        assert!(!s.contains("..") && !s.contains('\\') && !s.contains("//"));
        let segments: Vec<&str> = path.segments().collect();
        assert!(segments.len() <= 32);
        for segment in &segments {
            assert!(!segment.is_empty());
            assert!(segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
            assert!(!RESERVED_SEGMENTS.contains(segment), "{segment:?}");
        }
        // Normalising is idempotent and the wire form parses back.
        assert_eq!(CollectionPath::parse(s).ok().as_ref(), Some(&path));
        assert_eq!(CollectionPath::parse(&path.to_string()).ok().as_ref(), Some(&path));
        let json = serde_json::to_string(&path).expect("a path serialises");
        assert_eq!(serde_json::from_str::<CollectionPath>(&json).ok().as_ref(), Some(&path));
        // Lineage and parent stay valid paths.
        let lineage = path.lineage();
        assert_eq!(lineage.len(), segments.len() + 1);
        assert_eq!(lineage.last(), Some(&path));
        for ancestor in &lineage {
            assert!(path.starts_with(ancestor));
            assert_eq!(CollectionPath::parse(ancestor.as_str()).ok().as_ref(), Some(ancestor));
        }
        if let Some(parent) = path.parent() {
            assert_eq!(lineage.get(lineage.len() - 2), Some(&parent));
        }
        // A child segment is validated like a path.
        if let Ok(child) = path.child(raw) {
            assert_eq!(child.parent().as_ref(), Some(&path));
        }
    }

    if let Ok(version) = Version::parse(raw) {
        assert!(version.get() >= 1 && version.get() <= Version::MAX);
        assert_eq!(Version::parse(&version.to_string()).ok(), Some(version));
        assert_eq!(
            Version::from_json(&serde_json::json!(version.get())).ok(),
            Some(version)
        );
    }

    if let Ok(url) = SourceUrl::parse(raw) {
        assert!(matches!(url.url().scheme(), "http" | "https"));
        assert!(url.url().host().is_some());
        assert_eq!(SourceUrl::parse(url.as_str()).ok().as_ref(), Some(&url));
    }
});
