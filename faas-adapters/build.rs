//! Rebuilds the crate when a migration is added under `migrations/`:
//! `sqlx::migrate!` embeds the files at compile time and, on stable Rust,
//! can only make cargo watch the files that already exist.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
