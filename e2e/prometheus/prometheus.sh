#!/usr/bin/env bash
# Prometheus (built from its Go module by `cluster.sh build`, on PATH from `cluster.sh env`) on loopback,
# scraping the predictor pods of a local cluster the way a cluster's Prometheus does: Kubernetes pod
# discovery (through KUBECONFIG), the prometheus.io/* annotations the operator puts on predictor pods,
# and the namespace / pod / inference_service labels the canary analysis queries by. The scrape job is
# e2e/prometheus/scrape-configs.yaml, the one the kind setup uses too (config.ts writes the config).
#
#   prometheus.sh up       start it (idempotent); prints its URL
#   prometheus.sh down     stop it and delete its data
#   prometheus.sh status   running or not, and its targets
#   prometheus.sh url      print its URL
#
# Environment: KUBECONFIG (required for up), PROMETHEUS_PORT (9090), PROMETHEUS_SCRAPE_INTERVAL (1s),
# PROMETHEUS_STATE (default $LOOPLINE_CACHE/prometheus/<LOOPLINE_CLUSTER or loopline>).
set -euo pipefail

CACHE="${LOOPLINE_CACHE:-$HOME/.cache/loopline}"
PORT="${PROMETHEUS_PORT:-9090}"
INTERVAL="${PROMETHEUS_SCRAPE_INTERVAL:-1s}"
STATE="${PROMETHEUS_STATE:-$CACHE/prometheus/${LOOPLINE_CLUSTER:-loopline}}"
URL="http://127.0.0.1:$PORT"

log() { printf '[prometheus %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

alive() { [[ -f "$STATE/$1.pid" ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }
running() { alive prometheus; }

stop_one() {
  alive "$1" || return 0
  local pid; pid="$(cat "$STATE/$1.pid")"
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

BUILD_HINT="the Prometheus built from its Go module (bash e2e/cluster/cluster.sh build) comes first on PATH with eval \"\$(bash e2e/cluster/cluster.sh env)\""

up() {
  [[ -n "${KUBECONFIG:-}" ]] || { log "KUBECONFIG is not set: eval \"\$(bash e2e/cluster/cluster.sh env)\" first"; return 1; }
  command -v prometheus >/dev/null || { log "prometheus is not on PATH: $BUILD_HINT"; return 1; }
  mkdir -p "$STATE"
  if running; then echo "$URL"; return; fi
  stop_one prometheus
  (cd "$ROOT" && node --import tsx e2e/prometheus/config.ts --kubeconfig "$KUBECONFIG" --interval "$INTERVAL") >"$STATE/prometheus.yml"
  # Detached from our stdio so callers that capture our output are not held open.
  setsid prometheus --config.file="$STATE/prometheus.yml" --storage.tsdb.path="$STATE/data" \
    --storage.tsdb.retention.time=1d --web.listen-address="127.0.0.1:$PORT" --log.level=warn \
    </dev/null >"$STATE/prometheus.log" 2>&1 &
  echo $! >"$STATE/prometheus.pid"
  for _ in $(seq 150); do
    if curl -fsS "$URL/-/ready" >/dev/null 2>&1; then log "up on $URL (scrape interval $INTERVAL, state $STATE)"; echo "$URL"; return; fi
    alive prometheus || break
    sleep 0.2
  done
  # Debian's prometheus, built without Kubernetes discovery, refuses the config ("field kubernetes_sd_configs not found").
  log "prometheus did not become ready; see $STATE/prometheus.log ($BUILD_HINT)"
  tail -5 "$STATE/prometheus.log" >&2 || true
  return 1
}

down() {
  stop_one prometheus
  rm -rf "$STATE"
  log "stopped"
}

status() {
  if running; then
    echo "prometheus: running on $URL"
    curl -fsS "$URL/api/v1/targets?state=active" | node -e '
      let s = ""; process.stdin.on("data", (c) => (s += c)).on("end", () => {
        for (const t of JSON.parse(s).data.activeTargets) console.log(`  ${t.health.padEnd(7)} ${t.scrapeUrl}  ${t.labels.namespace}/${t.labels.pod}`);
      });'
  else
    echo "prometheus: not running"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 up|down|status|url" >&2; exit 2 ;;
esac
