#!/usr/bin/env bash
# The main job: a local cluster with Loopline and the examples running on it.
# Safe to re-run; `bash e2e/cluster/cluster.sh down` removes everything.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ -d node_modules ]] || { step "npm install"; npm install --no-audit --no-fund; }
step "local cluster (first run builds Kubernetes from its Go modules: ~20-30 min, progress below)"
bash e2e/cluster/cluster.sh up >/dev/null
eval "$(bash e2e/cluster/cluster.sh env)"

step "installing the Loopline CRDs"
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for condition=Established crd -l app.kubernetes.io/part-of=loopline --timeout=60s >/dev/null 2>&1 \
  || kubectl wait --for condition=Established crd/trainingjobs.loopline.dev crd/modelversions.loopline.dev crd/inferenceservices.loopline.dev --timeout=60s >/dev/null

step "applying the examples"
kubectl apply -f examples/ 2>&1 | sed 's/^/  /'

step "ready"
cat <<MSG
  export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$(command -v kubectl)"):\$PATH
  kubectl get loopline
  kubectl explain trainingjob.spec
  bash e2e/cluster/cluster.sh status
  bash e2e/cluster/cluster.sh down      # remove it all
MSG
kubectl get loopline
