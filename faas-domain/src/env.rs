//! Env precedence of a run (docs/api.md): root collection → … → leaf collection →
//! function → request, last wins; then the platform variables.

use std::collections::BTreeMap;

use faas_ports::{Deployment, EnvMap, RunId};

/// Merges env layers in order; a key in a later layer replaces the earlier value.
pub fn merge(layers: &[&EnvMap]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for layer in layers {
        for (k, v) in layer.iter() {
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

/// The variables the platform sets in every run. User maps can never hold
/// these keys (`EnvMap` reserves the `LOWCODE_FAAS_` prefix), so adding them
/// last cannot be overridden.
pub fn platform_vars(run_id: &RunId, deployment: &Deployment) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("LOWCODE_FAAS_RUN_ID".to_owned(), run_id.to_string()),
        ("LOWCODE_FAAS_EXECUTION_ID".to_owned(), run_id.to_string()),
        ("LOWCODE_FAAS_FUNCTION_NAME".to_owned(), deployment.name.to_string()),
        (
            "LOWCODE_FAAS_COLLECTION_PATH".to_owned(),
            deployment.collection_path.as_str().to_owned(),
        ),
        ("LOWCODE_FAAS_DEPLOYMENT_ID".to_owned(), deployment.deployment_id()),
        (
            "LOWCODE_FAAS_DEPLOYMENT_VERSION".to_owned(),
            deployment.version.to_string(),
        ),
    ])
}

/// The complete environment of a run: `layers` merged, then the platform variables.
pub fn run_env(layers: &[&EnvMap], run_id: &RunId, deployment: &Deployment) -> BTreeMap<String, String> {
    let mut env = merge(layers);
    env.extend(platform_vars(run_id, deployment));
    env
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn env(v: serde_json::Value) -> EnvMap {
        EnvMap::from_json(&v).unwrap()
    }

    /// One table row: the layers in precedence order and the expected merge.
    fn check(layers: &[serde_json::Value], want: serde_json::Value) {
        let maps: Vec<EnvMap> = layers.iter().cloned().map(env).collect();
        let refs: Vec<&EnvMap> = maps.iter().collect();
        let got = serde_json::to_value(merge(&refs)).unwrap();
        assert_eq!(got, want, "layers {layers:?}");
    }

    #[test]
    fn precedence_table() {
        // root, a, a/b, function, request
        check(&[], json!({}));
        check(&[json!({"A": "root"})], json!({"A": "root"}));
        check(
            &[
                json!({"A": "root", "B": "root"}),
                json!({"A": "a"}),
                json!({}),
                json!({}),
                json!({}),
            ],
            json!({"A": "a", "B": "root"}),
        );
        check(
            &[
                json!({"A": "root"}),
                json!({"A": "a"}),
                json!({"A": "ab"}),
                json!({}),
                json!({}),
            ],
            json!({"A": "ab"}),
        );
        check(
            &[
                json!({"A": "root"}),
                json!({"A": "a"}),
                json!({"A": "ab"}),
                json!({"A": "fn"}),
                json!({}),
            ],
            json!({"A": "fn"}),
        );
        check(
            &[
                json!({"A": "root"}),
                json!({"A": "a"}),
                json!({"A": "ab"}),
                json!({"A": "fn"}),
                json!({"A": "req"}),
            ],
            json!({"A": "req"}),
        );
        check(
            &[
                json!({"R": "1"}),
                json!({"A": "2"}),
                json!({"B": "3"}),
                json!({"F": "4"}),
                json!({"Q": "5"}),
            ],
            json!({"R": "1", "A": "2", "B": "3", "F": "4", "Q": "5"}),
        );
        check(&[json!({"A": "x"}), json!({}), json!({"A": ""})], json!({"A": ""}));
    }
}
