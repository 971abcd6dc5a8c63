//! The answers hyper writes by itself, before any of our code runs, to a
//! request it cannot parse: a head with no body (`400` for a malformed
//! request line or header, `414` for a URI over its limit, `431` for a head
//! over `max_header_bytes` or `max_headers`). They are recognised in what
//! hyper writes on a connection with no request in flight and replaced by
//! the same status with the JSON error body every other error has.

use warp::http::StatusCode;

use crate::ApiError;

/// The error of an automatic answer with this status, if it is one hyper writes.
pub(crate) fn api_error_for(status: StatusCode) -> Option<ApiError> {
    match status {
        StatusCode::BAD_REQUEST => Some(ApiError::new(
            status,
            "INVALID_REQUEST",
            "the HTTP request could not be parsed",
        )),
        StatusCode::URI_TOO_LONG => Some(ApiError::uri_too_long()),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Some(ApiError::new(
            status,
            "HEADERS_TOO_LARGE",
            "the request head is too large or has too many headers",
        )),
        _ => None,
    }
}

/// When `written` is exactly one of hyper's automatic answers (a status
/// line with one of those statuses, `content-length: 0`, the end of the
/// head and nothing after it), the replacement answer: the same status,
/// the JSON error body and `connection: close` (hyper closes the
/// connection after it).
pub(crate) fn json_answer_for(written: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(written).ok()?;
    let rest = head
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))?;
    let status = StatusCode::from_bytes(rest.get(..3)?.as_bytes()).ok()?;
    let error = api_error_for(status)?;
    let header_block = head.strip_suffix("\r\n\r\n")?;
    if header_block.contains("\r\n\r\n") {
        return None;
    }
    let empty = header_block
        .split("\r\n")
        .skip(1)
        .any(|line| line.eq_ignore_ascii_case("content-length: 0"));
    if !empty {
        return None;
    }
    let body = serde_json::json!({"error": error.message, "code": error.code}).to_string();
    let reason = status.canonical_reason().unwrap_or("");
    Some(
        format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_automatic_answers_are_recognised() {
        for (status, code) in [
            (400, "INVALID_REQUEST"),
            (414, "URI_TOO_LONG"),
            (431, "HEADERS_TOO_LARGE"),
        ] {
            let raw =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 22:00:00 GMT\r\n\r\n");
            let answer = String::from_utf8(json_answer_for(raw.as_bytes()).unwrap()).unwrap();
            let (head, body) = answer.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(json["code"], code);
            assert!(json["error"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }

    #[test]
    fn other_writes_pass() {
        for raw in [
            // a body follows, or is announced
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 42\r\n\r\n",
            // another status
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            // not a head at all (the tail of an earlier body)
            "\"ok\"}",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert!(json_answer_for(raw.as_bytes()).is_none(), "{raw}");
        }
    }
}
