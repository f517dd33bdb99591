#!/usr/bin/env bash
# The main job (`npm run demo`): a local cluster with Loopline installed by its Helm chart and the example
# journey run on it — train, register, promote, serve, canary, drift, retrain, canary — left running.
#
#   bash e2e/demo.sh          bring everything up and run the journey (safe to re-run)
#   bash e2e/demo.sh stop     stop the operator, the local-kubelet and Prometheus (the cluster stays)
#   bash e2e/demo.sh summary  print what to try next
#
# `bash e2e/cluster/cluster.sh down` removes the cluster, NATS and the S3 server with its bucket. Logs and pid files: ~/.cache/loopline/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cluster_env() { eval "$(bash e2e/cluster/cluster.sh env)"; }
# The Node the project pins (the `node` devDependency), not whichever `node` is first on PATH.
node() { ./node_modules/.bin/node "$@"; }

case "${1:-up}" in
  stop)
    cluster_env
    node --import tsx e2e/journey/main.ts stop
    exit
    ;;
  summary)
    cluster_env
    node --import tsx e2e/journey/main.ts summary
    exit
    ;;
  up) ;;
  *) echo "usage: $0 [up|stop|summary]" >&2; exit 2 ;;
esac

[[ -x node_modules/.bin/node ]] || { step "npm install"; npm install --no-audit --no-fund; }
command -v go >/dev/null || { echo "Go (>= 1.26) is needed: the Kubernetes binaries and the Gateway API CRDs come from Go modules" >&2; exit 1; }
step "local cluster (first run builds Kubernetes from its Go modules: about 13 min on 2 cores, progress below)"
bash e2e/cluster/cluster.sh up >/dev/null
cluster_env
step "Loopline and the example journey (about 3 minutes)"
node --import tsx e2e/journey/main.ts up
