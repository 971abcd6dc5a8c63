#!/usr/bin/env bash
# The playground's browser test against the real dispatcher (debug build):
# starts faas-server on 127.0.0.1 with a temp data dir and the process
# runtime, runs scripts/ui-test.py (files storage: a pinned old version
# answers VERSION_NOT_AVAILABLE, which --files-storage expects), then again
# with an API token, and stops the servers. Needs what
# scripts/install-ui-test-deps.sh installs (chromium, chromedriver, selenium).
# Options are passed to ui-test.py's first run (e.g. --screenshots docs/screenshots).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

cargo build -q -p faas-server
bin="$target_dir/debug/faas-server"

pids=()
tmp_dirs=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for dir in "${tmp_dirs[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT

# start_server [TOKEN]: starts a dispatcher, sets $base.
start_server() {
    local data log
    data="$(mktemp -d)"
    log="$data.log"
    tmp_dirs+=("$data" "$log")
    : >"$log"
    env -u LOWCODE_FAAS_WORKER_URL \
        LOWCODE_FAAS_LISTEN=127.0.0.1:0 LOWCODE_FAAS_RUNTIME=process LOWCODE_FAAS_STORAGE=files \
        LOWCODE_FAAS_DATA_DIR="$data" LOWCODE_FAAS_API_TOKEN="${1:-}" RUST_LOG=info \
        "$bin" >/dev/null 2>"$log" &
    pids+=("$!")
    local addr=""
    for _ in $(seq 1 200); do
        addr="$(sed -n 's/.*dispatcher listening.*addr=\([0-9.:]*\).*/\1/p' "$log" | head -1)"
        [ -n "$addr" ] && break
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log" >&2; echo "ui-browser-test: the dispatcher exited" >&2; exit 1; }
        sleep 0.05
    done
    [ -n "$addr" ] || { cat "$log" >&2; echo "ui-browser-test: the dispatcher did not start" >&2; exit 1; }
    base="http://$addr"
}

echo "== playground browser test (no token)"
start_server ""
python3 scripts/ui-test.py --base "$base" --files-storage "$@"

echo "== playground browser test (with an API token)"
token="ui-test-$RANDOM$RANDOM"
start_server "$token"
python3 scripts/ui-test.py --base "$base" --files-storage --token "$token"
