#!/usr/bin/env bash
# Verifies the deployment files: the systemd units with systemd-analyze (installed from Debian's
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

# The compose files (docker compose v2, or docker-compose v1): the Go-style
# stack (docker-compose.yml) and the development stack.
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  apt-get update && apt-get install -y --no-install-recommends docker-compose
  compose=(docker-compose)
fi
for file in docker-compose.yml docker-compose.dev.yml; do
  "${compose[@]}" -f "$file" config -q
  echo "verified $file"
done
# The Go-style stack runs the image's Go names on the Go mount, and the
# worker on the Docker runtime through the socket.
config=$("${compose[@]}" -f docker-compose.yml config)
for want in 'command:' '- worker' '- dispatcher' '/app/data' '/var/run/docker.sock:/var/run/docker.sock' 'LOWCODE_FAAS_RUNTIME: docker' 'LOWCODE_FAAS_WORKER_URL: http://worker:9090'; do
  grep -qF -- "$want" <<<"$config" || { echo "docker-compose.yml: expected '$want'" >&2; exit 1; }
done
# The image provides those names and that mount point (Dockerfile).
for want in 'ln -s faas-server /usr/local/bin/dispatcher' 'ln -s faas-worker /usr/local/bin/worker' 'ln -s /data /app/data' 'LOWCODE_FAAS_DATA_DIR=/data'; do
  grep -qF -- "$want" Dockerfile || { echo "Dockerfile: expected '$want'" >&2; exit 1; }
done
echo "verified Dockerfile names and data mount"
