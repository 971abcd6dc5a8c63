#!/usr/bin/env bash
# The project's test command (README "Quickstart", and what .ci/run runs).
# Starts what the tests need, then runs every test. Fails loudly when a
# needed service is missing: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build output (and the test services' env file) go where cargo puts them.
target_dir="${CARGO_TARGET_DIR:-target}"

command -v node >/dev/null || { echo "test.sh: node is required (Node >= 18)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "test.sh: cargo is required" >&2; exit 1; }

echo "== formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== dependency policy (deny.toml: licenses, bans, sources)"
if ! cargo deny --version >/dev/null 2>&1; then
    cargo install --locked cargo-deny
fi
cargo deny check licenses bans sources

echo "== docker image for the Docker runtime tests"
docker info >/dev/null 2>&1 || { echo "test.sh: the Docker daemon is not reachable; the Docker tests need it" >&2; exit 1; }
bash scripts/build-node-image.sh
export LOWCODE_FAAS_NODE_DOCKER_IMAGE=lowcode-faas/node:local

echo "== PostgreSQL and the S3 server for the db_s3 tests"
bash scripts/start-test-services.sh
# shellcheck source=/dev/null
source "$target_dir/test-services.env"

echo "== bootstrap.mjs (node --test)"
node --test js/

echo "== cargo test (black-box suite on files storage)"
cargo test --workspace --all-features

echo "== fuzz smoke (every fuzz target of fuzz/ for a few seconds, docs/fuzzing.md)"
bash scripts/fuzz.sh smoke

echo "== cargo test (black-box suite again, on PostgreSQL + S3)"
FAAS_TESTS_STORAGE=db_s3 cargo test -p faas-tests --test http

echo "== OpenAPI documents against the running servers (Schemathesis, files + db_s3 + worker)"
bash scripts/schemathesis.sh

echo "== playground in a real browser (scripts/ui-test.py against the dispatcher)"
bash scripts/ui-browser-test.sh --screenshots "$target_dir/ui-screenshots"

echo "== rustdoc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

echo "== systemd units (systemd-analyze verify)"
bash scripts/verify-deploy.sh

echo "== the server image, built without a registry and tried (scripts/verify-server-image.sh)"
bash scripts/verify-server-image.sh

echo "== Kubernetes manifests (kustomize, kubernetes-validate, checkov)"
bash scripts/verify-kubernetes.sh
