//! `GET /openapi.json` on both servers: the document of docs/, byte for
//! byte, as JSON, without a token even when one is required elsewhere.

fn file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test]
async fn the_dispatcher_serves_its_document_without_a_token() {
    let app = faas_tests::spawn_app(&[("LOWCODE_FAAS_API_TOKEN", "s3cret")]).await;
    let reply = app.get("/openapi.json").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.text, file("openapi.json"));
    assert_eq!(reply.body["openapi"], "3.1.0");
    // The rest of the API still needs the token.
    assert_eq!(app.get("/functions").await.status, 401);
    app.stop().await;
}

#[tokio::test]
async fn the_worker_serves_its_document_without_a_token() {
    let data = tempfile::tempdir().unwrap();
    let (base, server) = faas_tests::spawn_worker(data.path(), &[("LOWCODE_FAAS_WORKER_TOKEN", "s3cret")]).await;
    let client = reqwest::Client::new();
    let reply = client.get(format!("{base}/openapi.json")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/json");
    assert_eq!(reply.text().await.unwrap(), file("openapi-worker.json"));
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 401);
    server.shutdown().await;
}
