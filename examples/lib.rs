//! Examples of lowcode-faas as a library; see `embed.rs`, `mount_routes.rs`
//! and `mock_runtime.rs` (`cargo run -p faas-examples --example embed`).
#![warn(missing_docs)]
