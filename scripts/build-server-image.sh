#!/usr/bin/env bash
# Builds the lowcode-faas server image (dispatcher + worker) WITHOUT a
# registry: a minimal root file system made of host-built binaries, the
# host's `node` (for the process runtime) and the shared libraries they
# link, imported with `docker import`. Same layout and defaults as the
# Dockerfile (which needs base images from a registry); use it where no
# image can be pulled, then push the result to your own registry or load
# it into the cluster's nodes.
#
#   scripts/build-server-image.sh                 # release binaries, tag lowcode-faas:local
#   PROFILE=debug IMAGE=lowcode-faas:test scripts/build-server-image.sh
#
# Environment: IMAGE (tag, default lowcode-faas:local), PROFILE (release or
# debug, default release; the binaries are built when missing), NODE (the
# node binary, default `command -v node`). Prints the image id on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-lowcode-faas:local}"
PROFILE="${PROFILE:-release}"
NODE="${NODE:-$(command -v node || true)}"
die() { echo "build-server-image: $*" >&2; exit 1; }
[[ -n "${NODE}" && -x "${NODE}" ]] || die "no node binary found on the host (set NODE=/path/to/node)"
command -v docker >/dev/null || die "the docker CLI is required to import the image"

target_dir="${CARGO_TARGET_DIR:-target}"
case "$PROFILE" in
  release) cargo build -q --release --locked -p faas-server -p faas-worker ;;
  debug) cargo build -q --locked -p faas-server -p faas-worker ;;
  *) die "PROFILE must be release or debug" ;;
esac
bin_dir="$target_dir/$PROFILE"

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/lowcode-faas-server-rootfs.XXXXXX")"
trap 'rm -rf "${ROOTFS}" "${ROOTFS}.tar"' EXIT
mkdir -p "${ROOTFS}"/{usr/local/bin,etc/ssl/certs,tmp,data,home/faas,dev,proc,sys}
install -m 0755 "$bin_dir/faas-server" "$bin_dir/faas-worker" "${ROOTFS}/usr/local/bin/"
install -m 0755 "$(readlink -f "${NODE}")" "${ROOTFS}/usr/local/bin/node"
# The names the Go version's deployment files use.
ln -s faas-server "${ROOTFS}/usr/local/bin/dispatcher"
ln -s faas-worker "${ROOTFS}/usr/local/bin/worker"

copy_lib() {
  local dest="${ROOTFS}$1"
  [[ -e "${dest}" ]] && return 0
  mkdir -p "$(dirname "${dest}")"
  cp -L "$1" "${dest}"
}
for exe in "$bin_dir/faas-server" "$bin_dir/faas-worker" "${NODE}"; do
  while read -r lib; do copy_lib "${lib}"; done < <(ldd "$(readlink -f "$exe")" | grep -oE '/[^ ()]+' | sort -u)
done
for pattern in 'libnss_files.so*' 'libnss_dns.so*' 'libresolv.so*'; do
  while read -r lib; do copy_lib "${lib}"; done < <(find /lib /lib64 /usr/lib -maxdepth 2 -name "${pattern}" 2>/dev/null | sort -u)
done
# TLS roots for PostgreSQL, S3, Loki and source fetches.
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  cp -L /etc/ssl/certs/ca-certificates.crt "${ROOTFS}/etc/ssl/certs/"
fi
cat >"${ROOTFS}/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
faas:x:10001:10001:lowcode-faas:/home/faas:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PASSWD
cat >"${ROOTFS}/etc/group" <<'GROUP'
root:x:0:
faas:x:10001:
nogroup:x:65534:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"${ROOTFS}/etc/nsswitch.conf"
cp -R data/. "${ROOTFS}/data/"
chmod 1777 "${ROOTFS}/tmp"

tar -C "${ROOTFS}" --numeric-owner --owner=0 --group=0 --exclude=./data --exclude=./home/faas -c . >"${ROOTFS}.tar"
tar -C "${ROOTFS}" --numeric-owner --owner=10001 --group=10001 -r ./data ./home/faas -f "${ROOTFS}.tar"

old_id="$(docker image inspect --format '{{.Id}}' "${IMAGE}" 2>/dev/null || true)"
docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV LOWCODE_FAAS_DATA_DIR=/data' \
  --change 'ENV LOWCODE_FAAS_LISTEN=:8080' \
  --change 'ENV LOWCODE_FAAS_WORKER_LISTEN=:9090' \
  --change 'ENV HOME=/home/faas' \
  --change 'EXPOSE 8080 9090' \
  --change 'USER 10001:10001' \
  --change 'WORKDIR /home/faas' \
  --change 'CMD ["faas-server"]' \
  - "${IMAGE}" <"${ROOTFS}.tar" >/dev/null
new_id="$(docker image inspect --format '{{.Id}}' "${IMAGE}")"
if [[ -n "${old_id}" && "${old_id}" != "${new_id}" ]]; then
  docker image rm "${old_id}" >/dev/null 2>&1 || true
fi
echo "build-server-image: ${IMAGE} built from the ${PROFILE} binaries" >&2
echo "${new_id}"
