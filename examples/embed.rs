//! Embed the engine: files storage, the local `node` runtime, one invoke.
//! `cargo run -p faas-examples --example embed`
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use faas_adapters::{fs::FsSourceStore, process::ProcessRuntime};
use faas_domain::{CreateFunction, Engine, InvokeRequest, RunInput, SourceSpec};
use faas_ports::{CollectionPath, EnvMap, FunctionName, Language};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = tempfile::tempdir()?;
    let store = Arc::new(FsSourceStore::new(data.path())?);
    let runtime = Arc::new(ProcessRuntime::new(Default::default())?);
    let engine = Engine::builder(store, runtime).build();

    let name = FunctionName::parse("greet")?;
    let source = "export async function handler(i) { return { ok: true, data: `Hi ${i.who}` }; }";
    engine
        .create_function(CreateFunction {
            collection_path: CollectionPath::root(),
            name: name.clone(),
            language: Language::Javascript,
            source: SourceSpec::Code(source.into()),
            env: EnvMap::new(),
        })
        .await?;
    let result = engine
        .invoke(InvokeRequest {
            collection_path: CollectionPath::root(),
            name,
            input: RunInput::parse(Some(serde_json::json!({"who": "Ada"})))?,
            timeout: Some(std::time::Duration::from_secs(10)),
            env: EnvMap::new(),
            version: None,
            include_logs: false,
        })
        .await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
