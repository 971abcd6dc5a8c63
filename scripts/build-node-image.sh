#!/usr/bin/env bash
# Builds the Docker image `lowcode-faas/node:local` WITHOUT a registry: a
# minimal root file system made of the host's `node` binary and the shared
# libraries it links, imported with `docker import`.
#
# Used by the Docker runtime tests (`cargo test -p faas-adapters --features
# docker docker::`) and for local runs on machines that cannot pull
# `node:22-alpine`. Idempotent: running it again replaces the tag.
#
# Environment:
#   IMAGE  the tag to build (default lowcode-faas/node:local)
#   NODE   the node binary to copy (default: `command -v node`)
#
# Prints the image id on stdout.
set -euo pipefail

IMAGE="${IMAGE:-lowcode-faas/node:local}"
NODE="${NODE:-$(command -v node || true)}"

if [[ -z "${NODE}" || ! -x "${NODE}" ]]; then
  echo "build-node-image: no node binary found on the host (set NODE=/path/to/node)" >&2
  exit 1
fi
if ! command -v docker >/dev/null 2>&1; then
  echo "build-node-image: the docker CLI is required to import the image" >&2
  exit 1
fi

NODE="$(readlink -f "${NODE}")"
ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/lowcode-faas-node-rootfs.XXXXXX")"
trap 'rm -rf "${ROOTFS}"' EXIT

mkdir -p "${ROOTFS}"/{usr/local/bin,usr/bin,bin,etc,tmp,workspace,dev,proc,sys}
install -m 0755 "${NODE}" "${ROOTFS}/usr/local/bin/node"

# Every library `ldd` resolves (absolute paths), plus the dynamic loader,
# copied to the same path (symlinks resolved) so the loader finds them.
copy_lib() {
  local lib="$1"
  local dest="${ROOTFS}${lib}"
  [[ -e "${dest}" ]] && return 0
  mkdir -p "$(dirname "${dest}")"
  cp -L "${lib}" "${dest}"
}
while read -r lib; do
  copy_lib "${lib}"
done < <(ldd "${NODE}" | grep -oE '/[^ ()]+' | sort -u)

# Name resolution libraries: glibc loads them at run time (dlopen), ldd does
# not list them. Copied when present so `os.userInfo()` and DNS work.
for pattern in 'libnss_files.so*' 'libnss_dns.so*' 'libresolv.so*'; do
  while read -r lib; do
    copy_lib "${lib}"
  done < <(find /lib /lib64 /usr/lib -maxdepth 2 -name "${pattern}" 2>/dev/null | sort -u)
done

cat >"${ROOTFS}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
node:x:1000:1000:node:/workspace:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"${ROOTFS}/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
cat >"${ROOTFS}/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF

chmod 1777 "${ROOTFS}/tmp"
chmod 0775 "${ROOTFS}/workspace"

# Ownership is set in the archive itself, so the script needs no root.
tar -C "${ROOTFS}" --numeric-owner --owner=0 --group=0 \
  --exclude=./workspace -c . >"${ROOTFS}.tar"
tar -C "${ROOTFS}" --numeric-owner --owner=1000 --group=1000 \
  --no-recursion -r ./workspace -f "${ROOTFS}.tar"
trap 'rm -rf "${ROOTFS}" "${ROOTFS}.tar"' EXIT

old_id="$(docker image inspect --format '{{.Id}}' "${IMAGE}" 2>/dev/null || true)"

docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'WORKDIR /workspace' \
  --change 'USER 1000:1000' \
  --change 'CMD ["node"]' \
  - "${IMAGE}" <"${ROOTFS}.tar" >/dev/null

# Smoke test: node starts as the unprivileged user.
version="$(docker run --rm --network none "${IMAGE}" node -e 'console.log(process.version)')"
echo "build-node-image: ${IMAGE} runs node ${version}" >&2

new_id="$(docker image inspect --format '{{.Id}}' "${IMAGE}")"
# The previous build, now untagged, is dropped (kept if a container uses it).
if [[ -n "${old_id}" && "${old_id}" != "${new_id}" ]]; then
  docker image rm "${old_id}" >/dev/null 2>&1 || true
fi
echo "${new_id}"
