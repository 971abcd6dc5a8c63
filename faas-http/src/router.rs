//! Routing rules both servers follow: a path that names no route is 404
//! `NOT_FOUND`; a route that exists under another method is 405
//! `METHOD_NOT_ALLOWED` with `Allow`. Each binary owns its route enum.

use warp::http::{Method, StatusCode};

use crate::ApiError;

/// A binary's route: which methods it answers.
pub trait RouteSpec {
    /// Methods this route answers.
    fn allowed(&self) -> &'static [Method];
}

/// The matched route for `method`, or 404 (no route) / 405 (with `Allow`).
pub fn check_method<R: RouteSpec>(method: &Method, route: Option<R>) -> Result<R, ApiError> {
    let route = route.ok_or_else(ApiError::not_found)?;
    // HEAD is GET without the body (hyper sends no body for HEAD).
    if route.allowed().contains(method) || (*method == Method::HEAD && route.allowed().contains(&Method::GET)) {
        return Ok(route);
    }
    Err(method_not_allowed(method, route.allowed()))
}

/// 405 `METHOD_NOT_ALLOWED` for `method`, with `Allow` naming `allowed` in order.
pub fn method_not_allowed(method: &Method, allowed: &[Method]) -> ApiError {
    let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let mut err = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("method {method} is not allowed here (allowed: {allow})"),
    );
    err.allow = Some(allow);
    err
}
