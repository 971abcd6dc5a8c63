//! Unit-test code that uses the engine without node or Docker: a
//! `MockContainerRuntime` (mockall, `mock` feature of faas-ports) and the
//! in-memory `SourceStore` (`memory` feature of faas-adapters).
//! `cargo test -p faas-examples --example mock_runtime`
#![allow(clippy::print_stdout)]

use faas_domain::{CreateFunction, DomainError, Engine, InvokeRequest, RunInput, SourceSpec};
use faas_ports::{CollectionPath, EnvMap, FunctionName, Language};

/// Code under test: deploys a greeting function and returns what it said.
pub async fn greet(engine: &Engine, who: &str) -> Result<String, DomainError> {
    let name = FunctionName::parse("greet")?;
    engine
        .create_function(CreateFunction {
            collection_path: CollectionPath::root(),
            name: name.clone(),
            language: Language::Javascript,
            source: SourceSpec::Code(
                "export async function handler(i) { return {ok:true, data:`Hi ${i.who}`}; }".into(),
            ),
            env: EnvMap::new(),
        })
        .await?;
    let result = engine
        .invoke(InvokeRequest {
            collection_path: CollectionPath::root(),
            name,
            input: RunInput::parse(Some(serde_json::json!({ "who": who })))?,
            timeout: None,
            env: EnvMap::new(),
            version: None,
            include_logs: false,
        })
        .await?;
    Ok(result.output["data"].as_str().unwrap_or_default().to_owned())
}

fn main() {
    println!("run the tests: cargo test -p faas-examples --example mock_runtime");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faas_adapters::memory::MemorySourceStore;
    use faas_ports::{MockContainerRuntime, RunOutput};

    use super::*;

    #[tokio::test]
    async fn greet_passes_the_input_and_reads_the_result() {
        let mut runtime = MockContainerRuntime::new();
        runtime
            .expect_run()
            .withf(|job| job.input_json == br#"{"who":"Ada"}"# && job.env["LOWCODE_FAAS_FUNCTION_NAME"] == "greet")
            .times(1)
            .returning(|_| {
                Ok(RunOutput {
                    output_json: br#"{"type":"result","value":{"ok":true,"data":"Hi Ada"}}"#.to_vec(),
                    ..RunOutput::default()
                })
            });
        let engine = Engine::builder(Arc::new(MemorySourceStore::new()), Arc::new(runtime)).build();
        assert_eq!(greet(&engine, "Ada").await.unwrap(), "Hi Ada");
    }
}
