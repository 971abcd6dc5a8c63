#!/usr/bin/env bash
# Verifies the systemd units with systemd-analyze (installed from Debian's
# packages when missing). The units reference the installed binaries, so
# this script puts the freshly built ones at a temporary root.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v systemd-analyze >/dev/null; then
  apt-get update && apt-get install -y --no-install-recommends systemd
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo build -q -p faas-server -p faas-worker
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$(pwd)/$target_dir" ;; esac
bin="$target_dir/debug"
# The units name the installed binaries; verify copies that name the fresh builds.
for unit in lowcode-faas.service lowcode-faas-worker.service; do
  sed -e "s|/usr/local/bin/|$bin/|" "deploy/systemd/$unit" > "$dir/$unit"
  out=$(systemd-analyze verify "$dir/$unit" 2>&1) || { echo "$out"; echo "verify failed: $unit" >&2; exit 1; }
  # Users, groups and docker.service exist only on a deployment host.
  if echo "$out" | grep -v -e "docker.service" -e "^$" | grep -q .; then
    echo "$out"; echo "verify reported problems: $unit" >&2; exit 1
  fi
  echo "verified $unit"
done

# The development stack's compose file (docker compose v2, or docker-compose v1).
if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.dev.yml config -q
elif command -v docker-compose >/dev/null; then
  docker-compose -f docker-compose.dev.yml config -q
else
  apt-get update && apt-get install -y --no-install-recommends docker-compose
  docker-compose -f docker-compose.dev.yml config -q
fi
echo "verified docker-compose.dev.yml"
