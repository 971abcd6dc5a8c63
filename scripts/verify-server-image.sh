#!/usr/bin/env bash
# Builds the server image with scripts/build-server-image.sh (debug binaries
# unless PROFILE says otherwise) and tries it for real: the dispatcher serves
# the image's bundled data/ and runs its sample function on the process
# runtime, the worker answers a run, `dispatcher`/`worker` are the same
# programs, and `docker stop` shuts both down gracefully (exit status 0).
# Only loopback ports are published.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-lowcode-faas:verify}"
PROFILE="${PROFILE:-debug}" IMAGE="$IMAGE" bash scripts/build-server-image.sh >/dev/null
die() { echo "verify-server-image: $*" >&2; exit 1; }
names=()
cleanup() { for n in "${names[@]}"; do docker rm -f "$n" >/dev/null 2>&1 || true; done; docker image rm "$IMAGE" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# start runs in a subshell (`< <(start …)`): the caller registers the name
# for the clean-up, start only uses it.
cname() { echo "lowcode-faas-verify-$1-$$"; }
start() { # name, port inside, command...
  local name inside="$2"; name="$(cname "$1")"; shift 2
  docker run -d --name "$name" -p "127.0.0.1::$inside" -e LOWCODE_FAAS_RUNTIME=process \
    -e LOWCODE_FAAS_WORKER_TOKEN=verify-token "$IMAGE" "$@" >/dev/null
  local port
  port="$(docker port "$name" "$inside/tcp" | head -n1 | sed 's/.*://')"
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { echo "$name $port"; return 0; }
    sleep 0.1
  done
  docker logs "$name" >&2 || true
  die "$* did not become healthy"
}

names+=("$(cname dispatcher)")
read -r dname dport < <(start dispatcher 8080 dispatcher)
list="$(curl -sf "http://127.0.0.1:$dport/functions")" || die "GET /functions failed"
grep -q '"name":"hello"' <<<"$list" || die "the bundled data is not served: $list"
out="$(curl -sf -X POST "http://127.0.0.1:$dport/functions/hello/invoke" -d '{"input":{"name":"image"}}')" || die "invoke failed"
grep -q '"status":"success"' <<<"$out" || die "the bundled function did not run: $out"

names+=("$(cname worker)")
read -r wname wport < <(start worker 9090 worker)
run="$(curl -sf -X POST -H 'Authorization: Bearer verify-token' "http://127.0.0.1:$wport/v1/run" -d '{"function_name":"hello","input":{"name":"worker"}}')" || die "worker run failed"
grep -q '"status":"success"' <<<"$run" || die "the worker did not run: $run"

docker run --rm "$IMAGE" faas-server --version >/dev/null || die "faas-server --version"
for n in "$dname" "$wname"; do
  docker stop -t 30 "$n" >/dev/null
  code="$(docker inspect --format '{{.State.ExitCode}}' "$n")"
  [[ "$code" == 0 ]] || { docker logs "$n" >&2; die "$n exited with $code after docker stop"; }
done
echo "verified the server image (dispatcher, worker, bundled data, graceful stop)"
