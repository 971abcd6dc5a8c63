#!/usr/bin/env bash
# Checks the OpenAPI documents against the running servers with Schemathesis
# (PyPI): a dispatcher on files storage, a dispatcher on db_s3 (PostgreSQL +
# S3 of scripts/start-test-services.sh: source $target/test-services.env
# first) and a worker, each started here on loopback with the process runtime
# and stopped at the end. Checks: not_a_server_error (no 5xx),
# status_code_conformance, content_type_conformance and
# response_schema_conformance, on positive and negative data, a bounded
# number of examples per operation (SCHEMATHESIS_MAX_EXAMPLES, default 20).
# Exits non-zero on any failure. Generated source URLs are rewritten to a
# loopback URL the server refuses (scripts/schemathesis_hooks.py), so nothing
# leaves the machine.
#
# Installs Schemathesis into a virtualenv under the cargo target directory
# (needs python3 with venv, and PyPI once).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac

ST_VERSION=4.32.5
VENV="$target_dir/schemathesis-venv"
EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-20}"

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "version $ST_VERSION\$"; then
    echo "installing schemathesis $ST_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$ST_VERSION"
fi

for var in LOWCODE_FAAS_TEST_POSTGRES_DSN LOWCODE_FAAS_TEST_S3_ENDPOINT LOWCODE_FAAS_TEST_S3_BUCKET \
    LOWCODE_FAAS_TEST_S3_ACCESS_KEY LOWCODE_FAAS_TEST_S3_SECRET_KEY; do
    if [ -z "${!var:-}" ]; then
        echo "schemathesis.sh: $var is not set: run scripts/start-test-services.sh and source $target_dir/test-services.env" >&2
        exit 1
    fi
done
command -v psql >/dev/null || { echo "schemathesis.sh: psql is required (db_s3 run)" >&2; exit 1; }

cargo build --quiet -p faas-server -p faas-worker
bin="$target_dir/debug"

work=$(mktemp -d)
db="faas_schemathesis_$$"
pids=()
admin_dsn=$LOWCODE_FAAS_TEST_POSTGRES_DSN
db_dsn="${admin_dsn%/*}/$db"
stop_all() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    psql -X -q "$admin_dsn" -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap stop_all EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME BINARY VAR=VALUE...: a server with only these settings.
start() {
    local name=$1 binary=$2
    shift 2
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_LOG=warn \
        LOWCODE_FAAS_RUNTIME=process LOWCODE_FAAS_EXECUTION_MODE=cold \
        LOWCODE_FAAS_FUNCTION_LOGS=true LOWCODE_FAAS_FUNCTION_LOGS_SINK=memory \
        LOWCODE_FAAS_SHUTDOWN_GRACE_MS=5000 "$@" \
        "$bin/$binary" >"$work/$name.log" 2>&1 &
    pids+=($!)
}

failed=()
# check NAME DOCUMENT BASE_URL
check() {
    local name=$1 document=$2 base=$3
    echo "== schemathesis: $name ($document against $base)"
    # Run from the scratch directory: Schemathesis keeps a cache
    # (.schemathesis/) in its working directory. One worker: Python 3.11's
    # ast module is not thread-safe and fails now and then with several.
    if ! (cd "$work" && PYTHONPATH="$root/scripts" SCHEMATHESIS_HOOKS=schemathesis_hooks \
        "$VENV/bin/st" run "$root/$document" --url "$base" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "$EXAMPLES" --seed 12 --max-redirects 0 --request-timeout 30 \
        --wait-for-schema 60 --workers 1 --no-color --suppress-health-check all); then
        failed+=("$name")
        echo "--- $name server log (tail)"
        tail -n 40 "$work/$name.log" || true
    fi
}

files_port=$(free_port)
mkdir -p "$work/files-data"
start dispatcher-files faas-server LOWCODE_FAAS_LISTEN="127.0.0.1:$files_port" \
    LOWCODE_FAAS_STORAGE=files LOWCODE_FAAS_DATA_DIR="$work/files-data"

psql -X -q "$admin_dsn" -c "CREATE DATABASE \"$db\"" >/dev/null
dbs3_port=$(free_port)
start dispatcher-db_s3 faas-server LOWCODE_FAAS_LISTEN="127.0.0.1:$dbs3_port" \
    LOWCODE_FAAS_STORAGE=db_s3 LOWCODE_FAAS_POSTGRES_DSN="$db_dsn" \
    LOWCODE_FAAS_S3_ENDPOINT="$LOWCODE_FAAS_TEST_S3_ENDPOINT" LOWCODE_FAAS_S3_BUCKET="$LOWCODE_FAAS_TEST_S3_BUCKET" \
    LOWCODE_FAAS_S3_ACCESS_KEY="$LOWCODE_FAAS_TEST_S3_ACCESS_KEY" LOWCODE_FAAS_S3_SECRET_KEY="$LOWCODE_FAAS_TEST_S3_SECRET_KEY" \
    LOWCODE_FAAS_S3_PREFIX="$db/"

worker_port=$(free_port)
mkdir -p "$work/worker-data"
start worker faas-worker LOWCODE_FAAS_WORKER_LISTEN="127.0.0.1:$worker_port" \
    LOWCODE_FAAS_STORAGE=files LOWCODE_FAAS_DATA_DIR="$work/worker-data"

check dispatcher-files docs/openapi.json "http://127.0.0.1:$files_port"
check dispatcher-db_s3 docs/openapi.json "http://127.0.0.1:$dbs3_port"
check worker docs/openapi-worker.json "http://127.0.0.1:$worker_port"

if [ "${#failed[@]}" -gt 0 ]; then
    echo "schemathesis.sh: failures on: ${failed[*]}" >&2
    exit 1
fi
echo "schemathesis.sh: every check passed on the dispatcher (files, db_s3) and the worker"
