//! Helpers the fuzz targets share (included with `#[path]`).
#![allow(dead_code)]

/// Splits the input at `0xFF` bytes (never part of UTF-8) into at most `n`
/// UTF-8 strings; `None` when a part is not UTF-8.
pub fn parts(data: &[u8], n: usize) -> Option<Vec<&str>> {
    data.splitn(n, |b| *b == 0xFF)
        .map(|p| std::str::from_utf8(p).ok())
        .collect()
}

/// The content of a double-quoted string escaped with `\\` and `\"` only,
/// unescaped; `None` when it holds a bare `"` or another escape.
pub fn unquote(inner: &str) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | '"')) => out.push(e),
                _ => return None,
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}
