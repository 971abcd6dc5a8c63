#!/usr/bin/env bash
# The playground's browser test against the real dispatcher (debug build):
# starts faas-server on 127.0.0.1 with the process runtime and db_s3 storage
# (PostgreSQL + S3 of scripts/start-test-services.sh, a fresh database and
# S3 prefix per run; db_s3 keeps every version, so the pinned version 1 is
# invoked and viewed), and with LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE=true
# (the pull check fetches from a server of ui-test.py on 127.0.0.1). Runs
# scripts/ui-test.py, then again with an API token, and stops the servers
# and drops the databases. Needs what scripts/install-ui-test-deps.sh
# installs (chromium, chromedriver, selenium), psql, and the
# LOWCODE_FAAS_TEST_* variables:
#
#   bash scripts/start-test-services.sh && source "${CARGO_TARGET_DIR:-target}/test-services.env"
#
# Options are passed to ui-test.py's first run (e.g. --screenshots
# docs/screenshots).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

for var in LOWCODE_FAAS_TEST_POSTGRES_DSN LOWCODE_FAAS_TEST_S3_ENDPOINT LOWCODE_FAAS_TEST_S3_BUCKET \
    LOWCODE_FAAS_TEST_S3_ACCESS_KEY LOWCODE_FAAS_TEST_S3_SECRET_KEY; do
    if [ -z "${!var:-}" ]; then
        echo "ui-browser-test: $var is not set: run scripts/start-test-services.sh and source $target_dir/test-services.env" >&2
        exit 1
    fi
done
command -v psql >/dev/null || { echo "ui-browser-test: psql is required (a fresh db_s3 database per run)" >&2; exit 1; }

cargo build -q -p faas-server
bin="$target_dir/debug/faas-server"

admin_dsn=$LOWCODE_FAAS_TEST_POSTGRES_DSN
pids=()
tmp_files=()
databases=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for db in "${databases[@]}"; do
        psql -X -q "$admin_dsn" -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    done
    for f in "${tmp_files[@]}"; do rm -f "$f"; done
}
trap cleanup EXIT

# start_server NAME [TOKEN]: starts a dispatcher on a fresh database and S3
# prefix, sets $base.
start_server() {
    local db log
    db="faas_ui_${1}_$$_$RANDOM"
    log="$(mktemp)"
    tmp_files+=("$log")
    psql -X -q "$admin_dsn" -c "CREATE DATABASE \"$db\"" >/dev/null
    databases+=("$db")
    env -u LOWCODE_FAAS_WORKER_URL \
        LOWCODE_FAAS_LISTEN=127.0.0.1:0 LOWCODE_FAAS_RUNTIME=process \
        LOWCODE_FAAS_STORAGE=db_s3 LOWCODE_FAAS_POSTGRES_DSN="${admin_dsn%/*}/$db" \
        LOWCODE_FAAS_S3_ENDPOINT="$LOWCODE_FAAS_TEST_S3_ENDPOINT" LOWCODE_FAAS_S3_BUCKET="$LOWCODE_FAAS_TEST_S3_BUCKET" \
        LOWCODE_FAAS_S3_ACCESS_KEY="$LOWCODE_FAAS_TEST_S3_ACCESS_KEY" LOWCODE_FAAS_S3_SECRET_KEY="$LOWCODE_FAAS_TEST_S3_SECRET_KEY" \
        LOWCODE_FAAS_S3_PREFIX="$db/" LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE=true \
        LOWCODE_FAAS_API_TOKEN="${2:-}" RUST_LOG=info \
        "$bin" >/dev/null 2>"$log" &
    pids+=("$!")
    local addr=""
    for _ in $(seq 1 400); do
        addr="$(sed -n 's/.*dispatcher listening.*addr=\([0-9.:]*\).*/\1/p' "$log" | head -1)"
        [ -n "$addr" ] && break
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log" >&2; echo "ui-browser-test: the dispatcher exited" >&2; exit 1; }
        sleep 0.05
    done
    [ -n "$addr" ] || { cat "$log" >&2; echo "ui-browser-test: the dispatcher did not start" >&2; exit 1; }
    base="http://$addr"
}

echo "== playground browser test (db_s3, no token)"
start_server open ""
python3 scripts/ui-test.py --base "$base" "$@"

echo "== playground browser test (db_s3, with an API token)"
token="ui-test-$RANDOM$RANDOM"
start_server token "$token"
python3 scripts/ui-test.py --base "$base" --token "$token"
