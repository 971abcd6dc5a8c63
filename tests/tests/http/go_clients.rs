//! Clients written for the Go version keep working (issue #15, item 4):
//! the requests it answered are answered, the keys its tooling reads are
//! there, and what it refused (a blank source) is refused.

use faas_tests::{canned_server, spawn_app};
use serde_json::json;

use crate::dispatcher::{invoke, ECHO, HELLO};

#[tokio::test]
async fn put_env_with_an_empty_object_or_a_null_env_clears_it() {
    let app = spawn_app(&[]).await;
    let r = app
        .post("/collections", json!({"path": "team", "env": {"TEAM": "t"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        app.put("/collections/env", json!({"env": {"ROOT": "r"}})).await.status,
        200
    );
    app.create_function("team", "echo", ECHO, json!({})).await;
    let env_of = |res: serde_json::Value| res["output"]["data"]["env"].clone();
    let res = invoke(&app, "/collections/team/functions/echo/invoke", json!({})).await;
    assert_eq!(
        (env_of(res.clone())["TEAM"].clone(), env_of(res)["ROOT"].clone()),
        (json!("t"), json!("r"))
    );

    // `{}` clears a collection's env; `{"env": null}` clears the root's.
    let r = app.put("/collections/team/env", json!({})).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})), "{}", r.text);
    let r = app.put("/collections/env", json!({"env": null})).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})), "{}", r.text);
    let env = env_of(invoke(&app, "/collections/team/functions/echo/invoke", json!({})).await);
    assert!(env.get("TEAM").is_none() && env.get("ROOT").is_none(), "{env}");

    // Clearing what is already empty is fine; a wrong type is still refused.
    assert_eq!(app.put("/collections/team/env", json!({"env": null})).await.status, 200);
    let r = app.put("/collections/team/env", json!({"env": ["A"]})).await;
    assert_eq!((r.status, r.code()), (400, "INVALID_ENV"));
    let r = app.put("/collections/missing/env", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "COLLECTION_NOT_FOUND"));
}

#[tokio::test]
async fn language_is_case_insensitive() {
    let app = spawn_app(&[]).await;
    for (name, language) in [("a", "JavaScript"), ("b", " JAVASCRIPT ")] {
        let r = app
            .post(
                "/functions",
                json!({"name": name, "language": language, "source_code": HELLO}),
            )
            .await;
        assert_eq!(r.status, 201, "{language}: {}", r.text);
        assert_eq!(r.body["language"], "javascript");
    }
    let r = app
        .post(
            "/functions",
            json!({"name": "c", "language": "TypeScript", "source_code": HELLO}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "UNSUPPORTED_LANGUAGE"));
}

#[tokio::test]
async fn a_blank_source_url_counts_as_absent() {
    let app = spawn_app(&[]).await;
    let r = app
        .post(
            "/functions",
            json!({"name": "f", "source_code": HELLO, "source_url": "  "}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .put("/functions/f", json!({"source_code": ECHO, "source_url": ""}))
        .await;
    assert_eq!((r.status, r.body["version"].clone()), (200, json!(2)), "{}", r.text);
    assert_eq!(r.body["source_code"], ECHO);
    // An update with only a blank URL keeps the source (a new version).
    let r = app.put("/functions/f", json!({"source_url": " "})).await;
    assert_eq!(
        (r.status, r.body["source_code"].clone()),
        (200, json!(ECHO)),
        "{}",
        r.text
    );
    // Alone it is no source at all.
    let r = app.post("/functions", json!({"name": "g", "source_url": ""})).await;
    assert_eq!((r.status, r.code()), (400, "SOURCE_REQUIRED"));
    let r = app.post("/functions/f/pull", json!({"source_url": "  "})).await;
    assert_eq!((r.status, r.code()), (400, "SOURCE_REQUIRED"));
}

#[tokio::test]
async fn an_empty_or_whitespace_only_source_is_refused() {
    let app = spawn_app(&[]).await;
    for source in ["", "   ", "\n\t \r\n"] {
        let r = app
            .post("/functions", json!({"name": "f", "source_code": source}))
            .await;
        assert_eq!((r.status, r.code()), (400, "EMPTY_SOURCE"), "{source:?}: {}", r.text);
    }
    assert_eq!(app.get("/functions/f").await.status, 404, "nothing was stored");
    app.create_function("", "f", HELLO, json!({})).await;
    let r = app.put("/functions/f", json!({"source_code": " \n"})).await;
    assert_eq!((r.status, r.code()), (400, "EMPTY_SOURCE"));
    let r = app.get("/functions/f").await;
    assert_eq!(
        (r.body["version"].clone(), r.body["source_code"].clone()),
        (json!(1), json!(HELLO))
    );
}

#[tokio::test]
async fn a_blank_source_code_next_to_a_url_uses_the_url_and_an_empty_fetch_is_refused() {
    let body = HELLO;
    let good = canned_server(format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
    .await;
    let blank = canned_server("HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\n \n ".into()).await;
    let app = spawn_app(&[("LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE", "true")]).await;
    let r = app
        .post(
            "/functions",
            json!({"name": "f", "source_code": " ", "source_url": format!("http://{good}/f.mjs")}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["source_code"].clone()),
        (201, json!(HELLO)),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/functions/f/pull",
            json!({"source_url": format!("http://{blank}/f.mjs")}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "EMPTY_SOURCE"), "{}", r.text);
    // A real source next to a URL is still a conflict.
    let r = app
        .post(
            "/functions",
            json!({"name": "g", "source_code": HELLO, "source_url": format!("http://{good}/f.mjs")}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "SOURCE_CONFLICT"));
}

#[tokio::test]
async fn query_hints_carry_the_go_keys_and_a_form_encoded_grafana_url() {
    let app = spawn_app(&[(
        "LOWCODE_FAAS_LOGS_GRAFANA_EXPLORE_URL_TEMPLATE",
        "https://grafana.example/explore?left=%5B%22now-1h%22,%22now%22,%22Loki%22,%7B%22expr%22:%22{{logql}}%22%7D%5D&run={{run_id}}",
    )])
    .await;
    let r = app.get("/function-logs/query?function=billing").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["function"], "billing");
    assert_eq!(r.body["function_name"], "billing");
    let q = &r.body["queries"];
    assert_eq!(q["elasticsearch_lucene"], r#"function_name:"billing""#);
    assert_eq!(q["elasticsearch_lucene"], q["elasticsearch_query_string"]);
    let notes = r.body["notes"].as_str().unwrap();
    assert!(
        notes.contains("{job=\"docker\"}") && notes.contains("compose_service"),
        "{notes}"
    );
    assert!(notes.contains("选择器"), "Simplified Chinese too: {notes}");
    assert!(
        r.body.get("grafana_explore_url").is_none(),
        "needs a run or deployment id"
    );

    let r = app.get("/function-logs/query?run_id=run%20a%2Bb").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("function_name").is_none());
    assert_eq!(r.body["queries"]["elasticsearch_lucene"], r#"run_id:"run a+b""#);
    assert_eq!(
        r.body["grafana_explore_url"],
        "https://grafana.example/explore?left=%5B%22now-1h%22,%22now%22,%22Loki%22,%7B%22expr%22:%22%7Bjob%3D%22docker%22%7D+%7C%3D+%22run+a%2Bb%22%22%7D%5D&run=run+a%2Bb"
    );
}
