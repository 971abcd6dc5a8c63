//! Registry credentials for image pulls, from the Docker CLI's config file,
//! as the Go version got them by running `docker pull`.
//!
//! The file is `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`,
//! read at each pull (so a `docker login` after start-up counts). For the
//! image's registry host (`docker.io` when the reference names none; the
//! Docker Hub aliases are one host) the first of these that answers wins:
//! 1. `credHelpers[host]`: `docker-credential-<name> get`;
//! 2. `credsStore`: the same with the default helper;
//! 3. `auths[host]`: `auth` (base64 `user:password`), or `username` /
//!    `password`, or `identitytoken`.
//!
//! A helper that is not installed is skipped ("where present"); nothing
//! found means an anonymous pull. A file that cannot be read or parsed, or a
//! helper that fails, is logged (never the secrets) and the pull goes on
//! anonymously, so the registry's own answer reaches the caller. Every read
//! is bounded: the file by size, a helper by time and output size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest `config.json` read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Largest helper answer read.
const MAX_HELPER_OUTPUT: u64 = 64 * 1024;
/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// The key the Docker CLI uses for Docker Hub in `config.json` and with helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Where image pulls look for registry credentials (see the module docs).
/// The default follows the Docker CLI: `$DOCKER_CONFIG`, else
/// `$HOME/.docker`, and helpers on `PATH`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    /// The directory holding `config.json`; `None`: `$DOCKER_CONFIG`, else
    /// `$HOME/.docker`, looked up at each pull.
    pub config_dir: Option<PathBuf>,
    /// The directory holding the `docker-credential-*` helpers; `None`: `PATH`.
    pub helper_dir: Option<PathBuf>,
}

/// The parts of `config.json` that hold credentials.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry(..)")
    }
}

/// What `docker-credential-<name> get` prints.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl RegistryAuth {
    /// The credentials for pulling `image`, or `None` for an anonymous pull.
    pub(super) async fn credentials_for(&self, image: &str) -> Option<DockerCredentials> {
        let host = registry_host(image);
        let dir = self.config_dir.clone().or_else(default_config_dir)?;
        let path = dir.join("config.json");
        let config = match read_config(&path).await {
            Ok(Some(config)) => config,
            Ok(None) => return None,
            Err(problem) => {
                tracing::warn!(path = %path.display(), problem, "Cannot read the Docker config file; pulling anonymously.");
                return None;
            }
        };
        self.lookup(&config, &host).await
    }

    async fn lookup(&self, config: &ConfigFile, host: &str) -> Option<DockerCredentials> {
        let server = server_address(host);
        let helper = config
            .cred_helpers
            .iter()
            .find(|(key, _)| normalise_host(key) == host)
            .map(|(_, name)| name);
        for name in helper.into_iter().chain(config.creds_store.as_ref()) {
            if let Some(credentials) = self.ask_helper(name, &server).await {
                return Some(credentials);
            }
        }
        let (key, entry) = config.auths.iter().find(|(key, _)| normalise_host(key) == host)?;
        match entry_credentials(entry, key) {
            Ok(credentials) => credentials,
            Err(problem) => {
                tracing::warn!(registry = %host, problem, "Cannot use the Docker config's credentials; pulling anonymously.");
                None
            }
        }
    }

    /// Runs `docker-credential-<name> get` with the server address on stdin.
    async fn ask_helper(&self, name: &str, server: &str) -> Option<DockerCredentials> {
        if name.is_empty() || name.contains(['/', '\\']) {
            tracing::warn!(
                helper = name,
                "Ignoring a credential helper name that is not a plain name."
            );
            return None;
        }
        let program = match &self.helper_dir {
            Some(dir) => dir.join(format!("docker-credential-{name}")),
            None => PathBuf::from(format!("docker-credential-{name}")),
        };
        match tokio::time::timeout(HELPER_TIMEOUT, run_helper(&program, server)).await {
            Ok(Ok(answer)) => answer.map(|a| helper_credentials(a, server)),
            Ok(Err(HelperError::Missing)) => None,
            Ok(Err(HelperError::Failed(problem))) => {
                tracing::warn!(
                    helper = name,
                    problem,
                    "A Docker credential helper failed; trying the next source."
                );
                None
            }
            Err(_) => {
                tracing::warn!(
                    helper = name,
                    timeout_ms = HELPER_TIMEOUT.as_millis() as u64,
                    "A Docker credential helper did not answer in time; trying the next source."
                );
                None
            }
        }
    }
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`, as the Docker CLI.
fn default_config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| Path::new(&home).join(".docker")),
    }
}

/// `Ok(None)` when there is no file.
async fn read_config(path: &Path) -> Result<Option<ConfigFile>, String> {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut text = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut text)
        .await
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| format!("not a Docker config file: {e}"))
}

enum HelperError {
    /// Not installed: skip it.
    Missing,
    Failed(String),
}

/// `Ok(None)`: the helper has no credentials for this server.
async fn run_helper(program: &Path, server: &str) -> Result<Option<HelperAnswer>, HelperError> {
    let mut child = tokio::process::Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HelperError::Missing,
            _ => HelperError::Failed(e.to_string()),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its stdin is judged by its answer.
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let mut output = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_HELPER_OUTPUT)
            .read_to_end(&mut output)
            .await
            .map_err(|e| HelperError::Failed(e.to_string()))?;
    }
    let status = child.wait().await.map_err(|e| HelperError::Failed(e.to_string()))?;
    let text = String::from_utf8_lossy(&output);
    if !status.success() {
        // The protocol's answer for "nothing stored for this server".
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(HelperError::Failed(format!("exited with {status}")));
    }
    let answer: HelperAnswer =
        serde_json::from_str(text.trim()).map_err(|e| HelperError::Failed(format!("unreadable answer: {e}")))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(answer))
}

fn helper_credentials(answer: HelperAnswer, server: &str) -> DockerCredentials {
    // Helpers return identity tokens under the user name `<token>`.
    if answer.username == "<token>" {
        return DockerCredentials {
            identitytoken: Some(answer.secret),
            serveraddress: Some(server.to_owned()),
            ..DockerCredentials::default()
        };
    }
    DockerCredentials {
        username: Some(answer.username),
        password: Some(answer.secret),
        serveraddress: Some(server.to_owned()),
        ..DockerCredentials::default()
    }
}

/// An `auths` entry: `auth` (base64 `user:password`) wins over
/// `username`/`password`; an `identitytoken` alone works too. `Ok(None)`
/// for an empty entry (what `docker login` leaves with a `credsStore`).
fn entry_credentials(entry: &AuthEntry, key: &str) -> Result<Option<DockerCredentials>, String> {
    let server = Some(key.to_owned());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "its \"auth\" is not base64".to_owned())?;
        let decoded = String::from_utf8(decoded).map_err(|_| "its \"auth\" is not UTF-8".to_owned())?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| "its \"auth\" is not user:password".to_owned())?;
        return Ok(Some(DockerCredentials {
            username: Some(user.to_owned()),
            password: Some(password.to_owned()),
            serveraddress: server,
            ..DockerCredentials::default()
        }));
    }
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(DockerCredentials {
            identitytoken: Some(token.to_owned()),
            serveraddress: server,
            ..DockerCredentials::default()
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(password)) if !user.is_empty() => Ok(Some(DockerCredentials {
            username: Some(user.clone()),
            password: Some(password.clone()),
            serveraddress: server,
            ..DockerCredentials::default()
        })),
        _ => Ok(None),
    }
}

/// The registry host of an image reference, as Docker reads it: the first
/// path component when it looks like a host (has a `.` or a `:`, or is
/// `localhost`), else Docker Hub (`docker.io`).
pub(super) fn registry_host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => normalise_host(first),
        _ => "docker.io".to_owned(),
    }
}

/// A `config.json` key or a host, reduced to `host[:port]` in lower case,
/// with the Docker Hub aliases folded into `docker.io`.
fn normalise_host(key: &str) -> String {
    let key = key.trim();
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_owned(),
        _ => host,
    }
}

/// What helpers are asked for and what the daemon is told.
fn server_address(host: &str) -> String {
    if host == "docker.io" {
        DOCKER_HUB_SERVER.to_owned()
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn auth_in(dir: &Path, helper_dir: Option<&Path>) -> RegistryAuth {
        RegistryAuth {
            config_dir: Some(dir.to_path_buf()),
            helper_dir: helper_dir.map(Path::to_path_buf),
        }
    }

    fn write_config(dir: &Path, config: serde_json::Value) {
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    }

    fn user_password(c: &DockerCredentials) -> (Option<&str>, Option<&str>, Option<&str>) {
        (c.username.as_deref(), c.password.as_deref(), c.serveraddress.as_deref())
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    /// A fake `docker-credential-<name>` that logs the server it was asked
    /// about and prints `answer` (or fails with `exit`).
    fn fake_helper(dir: &Path, name: &str, answer: &str, exit: i32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let log = dir.join(format!("{name}.asked"));
        let path = dir.join(format!("docker-credential-{name}"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 9\ncat > '{}'\nprintf '%s' '{answer}'\nexit {exit}\n",
            log.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        log
    }

    #[test]
    fn registry_hosts_as_docker_reads_them() {
        let cases = [
            ("node:22-alpine", "docker.io"),
            ("library/node", "docker.io"),
            ("team/node:1", "docker.io"),
            ("docker.io/library/node:22", "docker.io"),
            ("index.docker.io/team/node", "docker.io"),
            ("registry.example.com/team/node:1", "registry.example.com"),
            ("Registry.Example.com:5000/node@sha256:abc", "registry.example.com:5000"),
            ("localhost/node", "localhost"),
            ("127.0.0.1:5000/node", "127.0.0.1:5000"),
        ];
        for (image, host) in cases {
            assert_eq!(registry_host(image), host, "{image}");
        }
        for key in [
            "https://index.docker.io/v1/",
            "docker.io",
            "registry-1.docker.io",
            "http://index.docker.io",
        ] {
            assert_eq!(normalise_host(key), "docker.io", "{key}");
        }
        assert_eq!(
            normalise_host("https://registry.example.com/v2/"),
            "registry.example.com"
        );
    }

    #[tokio::test]
    async fn auths_entries_by_registry_host() {
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            serde_json::json!({"auths": {
                "https://index.docker.io/v1/": {"auth": b64("hub-user:hub:pass")},
                "registry.example.com": {"username": "alice", "password": "s3cret"},
                "https://mirror.example.com:5000": {"identitytoken": "tok"},
                "empty.example.com": {},
            }}),
        );
        let auth = auth_in(dir.path(), None);
        let hub = auth.credentials_for("node:22-alpine").await.unwrap();
        assert_eq!(
            user_password(&hub),
            (Some("hub-user"), Some("hub:pass"), Some("https://index.docker.io/v1/"))
        );
        let hub = auth.credentials_for("docker.io/team/node").await.unwrap();
        assert_eq!(hub.username.as_deref(), Some("hub-user"));
        let private = auth.credentials_for("registry.example.com/team/node:1").await.unwrap();
        assert_eq!(
            user_password(&private),
            (Some("alice"), Some("s3cret"), Some("registry.example.com"))
        );
        let mirror = auth.credentials_for("mirror.example.com:5000/node").await.unwrap();
        assert_eq!(mirror.identitytoken.as_deref(), Some("tok"));
        assert!(auth.credentials_for("empty.example.com/node").await.is_none());
        assert!(auth.credentials_for("other.example.com/node").await.is_none());
    }

    #[tokio::test]
    async fn no_file_a_broken_file_or_a_bad_entry_mean_an_anonymous_pull() {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth_in(dir.path(), None);
        assert!(auth.credentials_for("node").await.is_none());
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        assert!(auth.credentials_for("node").await.is_none());
        write_config(dir.path(), serde_json::json!({"auths": {"docker.io": {"auth": "%%%"}}}));
        assert!(auth.credentials_for("node").await.is_none());
        write_config(
            dir.path(),
            serde_json::json!({"auths": {"docker.io": {"auth": b64("no-colon")}}}),
        );
        assert!(auth.credentials_for("node").await.is_none());
        std::fs::write(
            dir.path().join("config.json"),
            vec![b' '; MAX_CONFIG_BYTES as usize + 1],
        )
        .unwrap();
        assert!(auth.credentials_for("node").await.is_none());
    }

    #[tokio::test]
    async fn cred_helpers_then_creds_store_then_auths() {
        let dir = tempfile::tempdir().unwrap();
        let helpers = tempfile::tempdir().unwrap();
        let per_registry = fake_helper(
            helpers.path(),
            "corp",
            r#"{"ServerURL":"registry.example.com","Username":"bob","Secret":"from-corp"}"#,
            0,
        );
        let store = fake_helper(
            helpers.path(),
            "store",
            r#"{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"idtok"}"#,
            0,
        );
        write_config(
            dir.path(),
            serde_json::json!({
                "credHelpers": {"registry.example.com": "corp", "gone.example.com": "not-installed"},
                "credsStore": "store",
                "auths": {"registry.example.com": {"auth": b64("file:pw")}},
            }),
        );
        let auth = auth_in(dir.path(), Some(helpers.path()));
        let corp = auth.credentials_for("registry.example.com/app").await.unwrap();
        assert_eq!(
            user_password(&corp),
            (Some("bob"), Some("from-corp"), Some("registry.example.com"))
        );
        assert_eq!(std::fs::read_to_string(&per_registry).unwrap(), "registry.example.com");
        // Docker Hub: no per-registry helper, so the default store; its
        // `<token>` user name means an identity token.
        let hub = auth.credentials_for("node:22").await.unwrap();
        assert_eq!(hub.identitytoken.as_deref(), Some("idtok"));
        assert_eq!(hub.username, None);
        assert_eq!(std::fs::read_to_string(&store).unwrap(), "https://index.docker.io/v1/");
        // A helper that is not installed is skipped: the store answers.
        let gone = auth.credentials_for("gone.example.com/app").await.unwrap();
        assert_eq!(gone.identitytoken.as_deref(), Some("idtok"));
    }

    #[tokio::test]
    async fn a_helper_without_credentials_or_failing_falls_back_to_auths() {
        let dir = tempfile::tempdir().unwrap();
        let helpers = tempfile::tempdir().unwrap();
        fake_helper(helpers.path(), "empty", "credentials not found in native keychain", 1);
        fake_helper(helpers.path(), "broken", "garbage", 0);
        write_config(
            dir.path(),
            serde_json::json!({
                "credHelpers": {"registry.example.com": "broken"},
                "credsStore": "empty",
                "auths": {"registry.example.com": {"auth": b64("file:pw")}},
            }),
        );
        let auth = auth_in(dir.path(), Some(helpers.path()));
        let c = auth.credentials_for("registry.example.com/app").await.unwrap();
        assert_eq!(
            user_password(&c),
            (Some("file"), Some("pw"), Some("registry.example.com"))
        );
        // Nothing anywhere: anonymous.
        assert!(auth.credentials_for("node").await.is_none());
    }

    #[tokio::test]
    async fn helper_names_cannot_be_paths() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), serde_json::json!({"credsStore": "../../bin/sh"}));
        assert!(auth_in(dir.path(), None).credentials_for("node").await.is_none());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let entry = AuthEntry {
            password: Some("s3cret".into()),
            ..AuthEntry::default()
        };
        assert!(!format!("{entry:?}").contains("s3cret"));
    }
}
