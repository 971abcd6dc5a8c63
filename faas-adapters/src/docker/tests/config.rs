//! Configuration defaults, validation and the container command.

use super::*;

#[test]
fn config_defaults_and_validation() {
    let config: DockerConfig = serde_json::from_value(json!({"instance_id": "host-8080"})).unwrap();
    assert_eq!(config.image, "node:22-alpine");
    assert_eq!((config.memory_mb, config.cpus), (256, 1.0));
    assert_eq!((config.network.as_str(), config.user.as_str()), ("bridge", "1000:1000"));
    assert!(config.prewarm_image);
    assert_eq!(config.execution.mode, ExecutionMode::Prewarm);
    assert_eq!(validate(&config).unwrap(), (1000, 1000));
    assert_eq!(
        validate(&DockerConfig {
            user: "1234".into(),
            ..config.clone()
        })
        .unwrap(),
        (1234, 1234)
    );
    let bad = [
        DockerConfig {
            instance_id: String::new(),
            ..config.clone()
        },
        DockerConfig {
            user: "0:0".into(),
            ..config.clone()
        },
        DockerConfig {
            user: "node".into(),
            ..config.clone()
        },
        DockerConfig {
            memory_mb: 4,
            ..config.clone()
        },
        DockerConfig {
            cpus: 0.0,
            ..config.clone()
        },
        DockerConfig {
            cpus: f64::NAN,
            ..config.clone()
        },
        DockerConfig {
            image: " ".into(),
            ..config.clone()
        },
        DockerConfig {
            network: String::new(),
            ..config.clone()
        },
        DockerConfig {
            execution: ExecutionConfig {
                warm_max_per_key: 0,
                ..ExecutionConfig::default()
            },
            ..config.clone()
        },
    ];
    for config in bad {
        assert!(
            matches!(DockerRuntime::new(config.clone()), Err(AdapterError::Config(_))),
            "{config:?}"
        );
    }
}

#[test]
fn the_bootstrap_travels_in_the_command_and_the_workspace_is_a_capped_tmpfs() {
    let launcher = DockerLauncher {
        config: DockerConfig {
            instance_id: "i".into(),
            ..DockerConfig::default()
        },
        uid: 1000,
        gid: 1001,
        client: std::sync::Arc::new(super::launcher::Client::new(Docker::connect_with_defaults, None)),
        cleanups: std::sync::Arc::default(),
    };
    let body = launcher.container_body("lowcode-faas-x", None);
    let cmd = body.cmd.unwrap();
    assert_eq!(cmd[..3], ["node", "--input-type=module", "-e"]);
    assert_eq!(cmd[3], crate::bootstrap::BOOTSTRAP_MJS);
    assert_eq!(cmd[4..7], ["--", "--serve", "--own-container"]);
    assert_eq!(cmd[7], format!("--max-idle-ms={}", 16 * 60 * 1000));
    assert!(body.env.is_none(), "a runner has no env of its own");
    let tmpfs = body.host_config.unwrap().tmpfs.unwrap();
    assert_eq!(
        tmpfs.get("/workspace").map(String::as_str),
        Some("rw,nosuid,nodev,size=64m,uid=1000,gid=1001,mode=0700")
    );
    assert_eq!(container_name("run-a/b:c"), "lowcode-faas-run-abc");
}
