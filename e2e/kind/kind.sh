#!/usr/bin/env bash
# Loopline on a kind cluster (needs a Docker engine; see README.md for what works and what is missing).
# Written for users' machines and CI elsewhere: NOT run on the development machines, which have no Docker.
#   kind.sh up | env | down
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/e2e/kind"
NAME="${KIND_CLUSTER:-loopline}"
VERSION="${LOOPLINE_VERSION:-0.1.0}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.4.1}"
log() { printf '[kind %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
need() { command -v "$1" >/dev/null || { echo "kind.sh needs $1 on PATH" >&2; exit 1; }; }

up() {
  need docker; need kind; need kubectl; need helm; need go
  docker info >/dev/null 2>&1 || { echo "no Docker engine reachable (docker info failed)" >&2; exit 1; }
  mkdir -p /tmp/loopline-kind
  kind get clusters | grep -qx "$NAME" || kind create cluster --name "$NAME" --config "$HERE/cluster.yaml" --wait 120s
  kubectl config use-context "kind-$NAME" >/dev/null
  # kind nodes have no GPUs: advertise some on the GPU-labelled worker so GPU TrainingJobs schedule.
  local worker; worker="$(kubectl get nodes -l nvidia.com/gpu.present=true -o name | head -1)"
  kubectl patch "$worker" --subresource=status --type=merge -p '{"status":{"capacity":{"nvidia.com/gpu":"8"}}}' >/dev/null
  log "building and loading images"
  docker build -q -f "$ROOT/Dockerfile.operator" -t "loopline/operator:$VERSION" "$ROOT"
  docker build -q -f "$ROOT/Dockerfile.server" -t "loopline/predictor:$VERSION" "$ROOT"
  docker build -q -f "$ROOT/Dockerfile.trainer" -t "loopline/example-trainer:$VERSION" "$ROOT"
  for image in operator predictor example-trainer; do kind load docker-image --name "$NAME" "loopline/$image:$VERSION"; done
  log "NATS and Prometheus"
  kubectl apply -f "$HERE/infra.yaml" >/dev/null
  kubectl -n loopline-infra create configmap prometheus --from-file=prometheus.yml="$HERE/prometheus.yml" \
    --from-file=scrape-configs.yaml="$ROOT/e2e/prometheus/scrape-configs.yaml" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n loopline-infra rollout status deployment/nats deployment/prometheus --timeout=180s
  log "Gateway API CRDs $GATEWAY_API_VERSION (standard channel)"
  local dir; dir="$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  kubectl apply --server-side -f "$dir/config/crd/standard/" >/dev/null
  log "helm install"
  helm upgrade --install loopline "$ROOT/charts/loopline" -n loopline-system --create-namespace \
    --set nats.url=nats://nats.loopline-infra:4222 --set prometheus.url=http://prometheus.loopline-infra:9090 --wait --timeout 180s
  log "ready: kubectl --context kind-$NAME get loopline -A"
}

env_lines() {
  echo "export KUBECONFIG=${KUBECONFIG:-$HOME/.kube/config}"
  echo "kubectl config use-context kind-$NAME"
  echo "# for NATS and Prometheus from this machine:"
  echo "#   kubectl -n loopline-infra port-forward svc/nats 4222 & kubectl -n loopline-infra port-forward svc/prometheus 9090 &"
  echo "export NATS_URL=nats://127.0.0.1:4222"
}

case "${1:-}" in
  up) up ;;
  env) env_lines ;;
  down) need kind; kind delete cluster --name "$NAME" ;;
  *) echo "usage: $0 up|env|down" >&2; exit 2 ;;
esac
