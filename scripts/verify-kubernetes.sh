#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests in deploy/kubernetes/, no cluster
# needed:
#   1. render every overlay (deploy/kubernetes/overlays/*), and every component
#      (deploy/kubernetes/components/*) on top of overlays/db-s3, with
#      `kubectl kustomize` (any kustomize warning fails too);
#   2. validate every rendered document against the OpenAPI schemas of
#      Kubernetes $KUBE_VERSION with kubernetes-validate --strict (unknown
#      fields are errors), and check that every document was validated;
#   3. check the project's own rules (below, "policy"): only a `dind` native
#      sidecar may be privileged, every other container is non-root,
#      read-only, without capabilities, with probes and limits; no Service
#      environment variables (they would land among LOWCODE_FAAS_*); the only
#      hostPath is the Docker socket; the dispatcher's LOWCODE_FAAS_WORKER_URL
#      names a headless Service that exists; a default-deny NetworkPolicy;
#   4. run checkov's Kubernetes checks on the rendered YAML, with the skips
#      listed and justified below.
# It renders from a copy of deploy/kubernetes in a fresh temporary directory
# ($TMPDIR), with the placeholder *.env.example files as the secrets: a real
# secrets.env in your working tree is never read. On failure the rendered
# files are kept and their directory is printed.
#
# Installs what is missing: kubectl from apt (needs a kubectl whose embedded
# kustomize is v4.5 or newer, i.e. kubectl >= 1.24), and kubernetes-validate and
# checkov with pip into a virtualenv under
# ${LOWCODE_FAAS_TOOLS_DIR:-${XDG_CACHE_HOME:-~/.cache}/lowcode-faas} (checkov
# pins many libraries; a venv keeps them out of the system Python). Needs no
# network but the package registries (Debian, PyPI), and none once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSION=1.37.0 # newest schemas kubernetes-validate 1.37.0 ships
PY_TOOLS=(kubernetes-validate==1.37.0 checkov==3.3.30)
TOOLS_DIR=${LOWCODE_FAAS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lowcode-faas}
VENV=$TOOLS_DIR/k8s-venv

# checkov skips, each with its reason. Applied only where the rendered
# manifests show the reason (the policy step prints which features it found),
# so an overlay without a dind sidecar is still held to the dind checks.
SKIPS_ALWAYS=(
  # Image should use a digest: the manifests name lowcode-faas:local, built
  # from the Dockerfile and loaded into the node, which has no digest to pin;
  # production pins one with `kustomize edit set image` (deploy/kubernetes/README.md).
  CKV_K8S_43
  # Image pull policy Always: IfNotPresent is what lets a node use an image
  # loaded with `kind load` / `minikube image load` / `k3s ctr images import`;
  # with a digest (production), IfNotPresent cannot run a stale image.
  CKV_K8S_15
  # Secrets as files rather than env: the processes read their tokens, DSN and
  # S3 keys from LOWCODE_FAAS_* variables (README "Configuration"); the pods
  # mount no service-account token and function runs never inherit the
  # process environment.
  CKV_K8S_35
)
SKIPS_DIND=(
  # The Docker-in-Docker sidecar (container `dind`, and only it: the policy
  # step fails on any other privileged container) needs privileged for
  # dockerd: mounts, cgroups, iptables, namespaces for the function
  # containers. That implies the next four, which are meaningless for a
  # privileged container (it has every capability and can remount its root):
  CKV_K8S_16 # container should not be privileged
  CKV_K8S_20 # allowPrivilegeEscalation
  CKV_K8S_28 # NET_RAW capability
  CKV_K8S_37 # capabilities assigned
  # dockerd writes its pid, state and config under /var/run and /etc/docker.
  CKV_K8S_22 # read-only root filesystem
)
SKIPS_HOST_DOCKER_SOCKET=(
  # The host-docker-socket component mounts the node's Docker socket into the
  # worker on purpose (the alternative to a privileged dind sidecar; its
  # kustomization.yaml lists what that trades).
  CKV_K8S_27
)

die() {
  echo "verify-kubernetes: $*" >&2
  exit 1
}

# The kustomize version embedded in kubectl (e.g. v5.5.0), or nothing.
kustomize_version() {
  kubectl version --client -o json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("kustomizeVersion",""))' 2>/dev/null || true
}

# True when kubectl's kustomize knows components, patches and labels (>= v4.5).
kustomize_ok() {
  command -v kubectl >/dev/null || return 1
  local v
  v=$(kustomize_version)
  [[ $v =~ ^v([0-9]+)\.([0-9]+) ]] || return 1
  ((BASH_REMATCH[1] > 4 || (BASH_REMATCH[1] == 4 && BASH_REMATCH[2] >= 5)))
}

if ! kustomize_ok; then
  if ! command -v kubectl >/dev/null; then
    echo "== installing kubectl (apt)"
    apt-get update
    # `kubectl` where a Kubernetes apt repository is configured; else Debian's
    # own kubernetes-client (bookworm's is 1.20, too old: checked below).
    apt-get install -y --no-install-recommends kubectl ||
      apt-get install -y --no-install-recommends kubernetes-client ||
      die "cannot install kubectl with apt"
  fi
  kustomize_ok || die "kubectl $(kubectl version --client 2>/dev/null | head -1) embeds kustomize '$(kustomize_version)';" \
    "the manifests need kustomize >= v4.5 (kubectl >= 1.24: components, patches, labels)." \
    "Install a newer kubectl (the Kubernetes apt repository, pkgs.k8s.io) and run again."
fi

venv_ok() {
  [[ -x $VENV/bin/kubernetes-validate && -x $VENV/bin/checkov ]] || return 1
  local have
  have=$("$VENV/bin/pip" freeze 2>/dev/null | grep -ciE "^(kubernetes-validate==1\.37\.0|checkov==3\.3\.30)$" || true)
  [[ $have == 2 ]]
}
if ! venv_ok; then
  echo "== installing ${PY_TOOLS[*]} (pip, into $VENV)"
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}" || die "pip install ${PY_TOOLS[*]} failed"
  venv_ok || die "the tools are not usable after installing them into $VENV"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/verify-kubernetes.XXXXXX")
keep=0
cleanup() {
  if [[ $keep == 1 ]]; then
    echo "verify-kubernetes: rendered files kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'keep=1' ERR

# A copy without any real secrets file; the placeholders stand in for them.
tar -C deploy -cf - --exclude='*secrets.env' kubernetes | tar -C "$work" -xf -
while IFS= read -r -d '' example; do
  cp "$example" "${example%.example}"
done < <(find "$work/kubernetes" -name '*.env.example' -print0)
mkdir -p "$work/rendered"

# What to render: every overlay, and every component on top of overlays/db-s3
# (so a component no overlay uses is checked too), as label=directory.
targets=()
for dir in "$work"/kubernetes/overlays/*/; do
  [[ -f $dir/kustomization.yaml ]] && targets+=("$(basename "$dir")=$dir")
done
((${#targets[@]} > 0)) || die "no overlay under deploy/kubernetes/overlays"
for dir in "$work"/kubernetes/components/*/; do
  [[ -f $dir/kustomization.yaml ]] || continue
  component=$(basename "$dir")
  gen=$work/kubernetes/generated/db-s3+$component
  mkdir -p "$gen"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../overlays/db-s3]\ncomponents: [../../components/%s]\n' \
    "$component" >"$gen/kustomization.yaml"
  targets+=("db-s3+$component=$gen")
done

# The project's own rules on one rendered overlay; prints the features found
# (dind, host-docker-socket) on its last line.
policy() {
  "$VENV/bin/python" - "$1" <<'PY'
import sys, yaml

path = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors, features = [], set()

def err(where, msg):
    errors.append(f"{where}: {msg}")

def check_container(where, c, sidecar):
    sc = c.get("securityContext") or {}
    name = c.get("name")
    if name == "dind" and sidecar:
        if sc.get("privileged") is True:
            features.add("dind")
        return
    if sc.get("privileged") is True:
        err(where, "privileged (only the `dind` native sidecar may be)")
    if sc.get("allowPrivilegeEscalation") is not False:
        err(where, "allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        err(where, "readOnlyRootFilesystem must be true")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
        err(where, "capabilities must drop ALL and add none")
    if sc.get("runAsNonRoot") is False or sc.get("runAsUser") == 0:
        err(where, "must not run as root")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(kind) or {}):
                err(where, f"resources.{kind}.{r} missing")
    for probe in ("livenessProbe", "readinessProbe"):
        if probe not in c:
            err(where, f"{probe} missing")

for d in docs:
    kind, name = d.get("kind"), d["metadata"]["name"]
    if kind not in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
        continue
    where = f"{kind}/{name}"
    spec = d["spec"]["template"]["spec"] if kind != "CronJob" else d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if spec.get("automountServiceAccountToken") is not False:
        err(where, "automountServiceAccountToken must be false")
    psc = spec.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        err(where, "pod securityContext.runAsNonRoot must be true")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        err(where, "pod seccompProfile must be RuntimeDefault")
    if spec.get("enableServiceLinks") is not False:
        err(where, "enableServiceLinks must be false (Service env vars would land among LOWCODE_FAAS_*)")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            err(where, f"{key} must be off")
    for c in spec.get("containers") or []:
        check_container(f"{where} container {c.get('name')}", c, sidecar=False)
    for c in spec.get("initContainers") or []:
        check_container(f"{where} initContainer {c.get('name')}", c, sidecar=c.get("restartPolicy") == "Always")
    for v in spec.get("volumes") or []:
        hp = v.get("hostPath")
        if hp is None:
            continue
        if hp.get("path") == "/var/run/docker.sock" and hp.get("type") == "Socket":
            features.add("host-docker-socket")
        else:
            err(where, f"hostPath {hp.get('path')} (only the Docker socket is allowed)")

# LOWCODE_FAAS_WORKER_URL must name an existing headless Service and its port.
services = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d.get("kind") == "Service"}
urls = [(d["metadata"]["name"], d["data"]["LOWCODE_FAAS_WORKER_URL"])
        for d in docs if d.get("kind") == "ConfigMap" and "LOWCODE_FAAS_WORKER_URL" in (d.get("data") or {})]
if not urls:
    err("ConfigMap", "no LOWCODE_FAAS_WORKER_URL")
for cm, url in urls:
    rest = url.split("://", 1)[-1]
    host, _, port = rest.partition(":")
    parts = host.split(".")
    if len(parts) != 5 or parts[2:] != ["svc", "cluster", "local"] or not port.isdigit():
        err(f"ConfigMap/{cm}", f"LOWCODE_FAAS_WORKER_URL {url}: expected http://<service>.<namespace>.svc.cluster.local:<port>")
        continue
    svc = services.get((parts[1], parts[0]))
    if svc is None:
        err(f"ConfigMap/{cm}", f"LOWCODE_FAAS_WORKER_URL names Service {parts[0]} in namespace {parts[1]}, which is not rendered")
    elif svc["spec"].get("clusterIP") != "None":
        err(f"Service/{parts[0]}", "must be headless (clusterIP: None)")
    elif int(port) not in [p.get("port") for p in svc["spec"].get("ports") or []]:
        err(f"Service/{parts[0]}", f"has no port {port}")

deny = [d for d in docs if d.get("kind") == "NetworkPolicy" and d["spec"].get("podSelector") == {}
        and set(d["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not d["spec"].get("ingress") and not d["spec"].get("egress")]
if not deny:
    err("NetworkPolicy", "no default-deny (podSelector {}, Ingress and Egress, no rules)")

for e in errors:
    print(f"policy: {path}: {e}", file=sys.stderr)
print(" ".join(sorted(features)) or "-")
sys.exit(1 if errors else 0)
PY
}

failed=0
for target in "${targets[@]}"; do
  name=${target%%=*}
  echo "== $name"
  out=$work/rendered/$name.yaml
  if ! kubectl kustomize "${target#*=}" >"$out" 2>"$work/rendered/$name.stderr"; then
    cat "$work/rendered/$name.stderr" >&2
    echo "FAILED: kubectl kustomize $name" >&2
    failed=1
    continue
  fi
  if [[ -s $work/rendered/$name.stderr ]]; then
    cat "$work/rendered/$name.stderr" >&2
    echo "FAILED: kubectl kustomize $name printed warnings" >&2
    failed=1
  fi

  documents=$("$VENV/bin/python" -c 'import sys,yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$out")
  if validated=$("$VENV/bin/kubernetes-validate" --strict -k "$KUBE_VERSION" "$out" 2>&1); then
    passed=$(grep -c " passed for resource " <<<"$validated" || true)
    if [[ $passed != "$documents" ]]; then
      echo "$validated" >&2
      echo "FAILED: kubernetes-validate passed $passed of $documents documents of $name" >&2
      failed=1
    else
      echo "kubernetes-validate --strict ($KUBE_VERSION): $documents documents valid"
    fi
  else
    grep -v " passed for resource " <<<"$validated" >&2 || true
    echo "FAILED: kubernetes-validate $name" >&2
    failed=1
  fi

  if features=$(policy "$out"); then
    echo "policy: ok (features: $(tail -n 1 <<<"$features"))"
  else
    echo "FAILED: policy $name" >&2
    failed=1
  fi
  features=$(tail -n 1 <<<"$features")
  skips=("${SKIPS_ALWAYS[@]}")
  [[ " $features " == *" dind "* ]] && skips+=("${SKIPS_DIND[@]}")
  [[ " $features " == *" host-docker-socket "* ]] && skips+=("${SKIPS_HOST_DOCKER_SOCKET[@]}")
  skip_list=$(IFS=,; echo "${skips[*]}")
  if report=$("$VENV/bin/checkov" --framework kubernetes -f "$out" --skip-download --compact --quiet \
    --skip-check "$skip_list" 2>&1); then
    echo "checkov: $(grep -m1 -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*' <<<"$report" || echo "no failed checks") (skipped: $skip_list)"
  else
    echo "$report" >&2
    echo "FAILED: checkov $name" >&2
    failed=1
  fi
done

if ((failed)); then
  keep=1
  die "Kubernetes manifests: FAILED (see above)"
fi
echo "Kubernetes manifests: ${#targets[@]} renderings (overlays, and components over db-s3) validated and checked"
