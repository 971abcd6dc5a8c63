//! Image pulls from a private registry on loopback (the daemon treats
//! `127.0.0.0/8` as an insecure registry, so plain HTTP works): refused
//! without credentials, pulled with those of a Docker config file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bollard::query_parameters::RemoveImageOptionsBuilder;
use bollard::Docker;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::daemon::pull_image;
use super::RegistryAuth;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";
const PULL_LIMIT: Duration = Duration::from_secs(120);

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A one-file image in the OCI layout: (manifest, [(digest, blob)]).
fn image() -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let mut builder = tar::Builder::new(Vec::new());
    let text = b"hello from a private registry\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "hello.txt", &text[..]).unwrap();
    let layer = builder.into_inner().unwrap();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": sha256(&layer),
            "size": layer.len(),
        }],
    })
    .to_string()
    .into_bytes();
    (manifest, vec![(sha256(&config), config), (sha256(&layer), layer)])
}

/// A registry (distribution API v2, read-only, HTTP Basic auth) serving
/// one image under any name, answering one request per connection.
async fn private_registry() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (manifest, blobs) = image();
    let content = Arc::new((manifest, blobs));
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let content = Arc::clone(&content);
            let expected = expected.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                // A TLS hello (the daemon tries HTTPS first) is not HTTP: close.
                let Ok(head) = String::from_utf8(head) else { return };
                let mut lines = head.lines();
                let mut request = lines.next().unwrap_or("").split(' ');
                let (method, path) = (request.next().unwrap_or(""), request.next().unwrap_or(""));
                let authorised = lines.any(|l| {
                    l.split_once(':')
                        .is_some_and(|(k, v)| k.eq_ignore_ascii_case("authorization") && v.trim() == expected)
                });
                let (manifest, blobs) = &*content;
                let (status, kind, body, digest): (&str, &str, &[u8], String) = if !authorised {
                    (
                        "401 Unauthorized",
                        "application/json",
                        br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                        String::new(),
                    )
                } else if path == "/v2/" {
                    ("200 OK", "application/json", b"{}", String::new())
                } else if path.contains("/manifests/") {
                    (
                        "200 OK",
                        "application/vnd.oci.image.manifest.v1+json",
                        manifest,
                        sha256(manifest),
                    )
                } else if let Some((digest, blob)) = blobs.iter().find(|(d, _)| path.ends_with(&format!("/blobs/{d}")))
                {
                    ("200 OK", "application/octet-stream", blob, digest.clone())
                } else {
                    (
                        "404 Not Found",
                        "application/json",
                        br#"{"errors":[{"code":"NOT_FOUND"}]}"#,
                        String::new(),
                    )
                };
                let mut reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nDocker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n",
                    body.len()
                );
                if !authorised {
                    reply.push_str("WWW-Authenticate: Basic realm=\"lowcode-faas-test\"\r\n");
                }
                if !digest.is_empty() {
                    reply.push_str(&format!("Docker-Content-Digest: {digest}\r\n"));
                }
                reply.push_str("\r\n");
                let mut bytes = reply.into_bytes();
                if method != "HEAD" {
                    bytes.extend_from_slice(body);
                }
                let _ = sock.write_all(&bytes).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    port
}

async fn pull(docker: &Docker, image: &str, auth: &RegistryAuth) -> Result<(), String> {
    let credentials = auth.credentials_for(image).await;
    match tokio::time::timeout(PULL_LIMIT, pull_image(docker, image, credentials)).await {
        Ok(result) => result.map_err(|fault| fault.message),
        Err(_) => panic!("the pull of {image} did not end within {PULL_LIMIT:?}"),
    }
}

#[tokio::test]
async fn a_private_image_is_pulled_with_the_docker_config_credentials() {
    let docker = Docker::connect_with_defaults().unwrap();
    let port = private_registry().await;
    let image = format!("127.0.0.1:{port}/private/hello:v1");
    let config_dir = tempfile::tempdir().unwrap();
    let auth = RegistryAuth {
        config_dir: Some(config_dir.path().to_path_buf()),
        helper_dir: None,
    };

    // No config file: an anonymous pull, which the registry refuses (the
    // daemon answers the Basic challenge with "no basic auth credentials").
    let refused = pull(&docker, &image, &auth).await.unwrap_err();
    assert!(
        refused.contains("no basic auth credentials") || refused.to_lowercase().contains("unauthorized"),
        "{refused}"
    );

    // `docker login` writes the `auths` entry under the registry's host.
    let login = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        config_dir.path().join("config.json"),
        serde_json::json!({"auths": {format!("127.0.0.1:{port}"): {"auth": login}}}).to_string(),
    )
    .unwrap();
    let pulled = pull(&docker, &image, &auth).await;
    let inspected = docker.inspect_image(&image).await;
    let _ = docker
        .remove_image(
            &image,
            Some(RemoveImageOptionsBuilder::default().force(true).build()),
            None,
        )
        .await;
    pulled.unwrap();
    inspected.unwrap();
}
