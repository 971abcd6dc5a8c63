//! Mount the bundled dispatcher API inside your own warp server, next to
//! your own routes. Starts on 127.0.0.1:0, calls itself once, and exits.
//! `cargo run -p faas-examples --example mount_routes`
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use faas_adapters::fs::FsSourceStore;
use faas_adapters::process::ProcessRuntime;
use faas_domain::Engine;
use faas_server::app::{self, DispatcherBuilder};
use warp::Filter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = tempfile::tempdir()?;
    // Typed values all the way: your adapters, your engine, the dispatcher.
    let store = Arc::new(FsSourceStore::new(data.path())?);
    let runtime = Arc::new(ProcessRuntime::new(Default::default())?);
    let engine = Arc::new(Engine::builder(store, runtime).build());
    let dispatcher = DispatcherBuilder::new(engine).max_body_bytes(1024 * 1024).build()?;

    // Your own routes first; the bundled API matches every path, so it goes last.
    let mine = warp::path!("my" / "status").map(|| warp::reply::json(&serde_json::json!({"mine": true})));
    let faas = warp::path("faas").and(app::routes(dispatcher));
    let routes = mine.map(warp::Reply::into_response).or(faas).unify();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(warp::serve(routes).incoming(listener).run());

    let mine: serde_json::Value = reqwest::get(format!("http://{addr}/my/status")).await?.json().await?;
    let health: serde_json::Value = reqwest::get(format!("http://{addr}/faas/healthz"))
        .await?
        .json()
        .await?;
    println!("own route: {mine}, bundled /faas/healthz: {health}");
    Ok(())
}
