#!/usr/bin/env bash
# Debian's Prometheus on loopback, scraping the predictor pods of a local cluster the way a cluster
# Prometheus does: Kubernetes pod discovery (through a kubeconfig), the prometheus.io/* annotations the
# operator puts on predictor pods, and the namespace / inference_service labels the canary analysis
# queries by. Only pod addresses of the local clusters (198.19.0.0/16) are ever scraped.
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
running() { alive prometheus && alive discovery; }

stop_one() {
  alive "$1" || return 0
  local pid; pid="$(cat "$STATE/$1.pid")"
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

ensure_binary() {
  command -v prometheus >/dev/null && return
  log "installing prometheus (Debian)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null
  # The package starts a system service on :9090 scraping localhost; we run our own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null; then service prometheus stop >/dev/null 2>&1 || true; fi
}

write_config() {
  # Debian builds Prometheus without Kubernetes service discovery, so discovery.ts plays it: it watches
  # pods and writes the targets (with the labels a kubernetes_sd relabelling would give) to a file_sd file.
  cat >"$STATE/prometheus.yml" <<YAML
global:
  scrape_interval: $INTERVAL
  scrape_timeout: $INTERVAL
  evaluation_interval: $INTERVAL
scrape_configs:
  - job_name: loopline-predictors
    file_sd_configs:
      - files: [$STATE/targets.json]
        refresh_interval: 1s
    relabel_configs:
      # Pod addresses of the local clusters only, whatever the file says: nothing outside this machine is ever scraped.
      - source_labels: [__address__]
        regex: 198\.19\.\d+\.\d+:\d+
        action: keep
YAML
}

up() {
  [[ -n "${KUBECONFIG:-}" ]] || { log "KUBECONFIG is not set: eval \"\$(bash e2e/cluster/cluster.sh env)\" first"; return 1; }
  ensure_binary
  mkdir -p "$STATE"
  if running; then echo "$URL"; return; fi
  stop_one discovery; stop_one prometheus
  write_config
  echo '[]' >"$STATE/targets.json"
  # Both detached from our stdio so callers that capture our output are not held open.
  cd "$ROOT" # tsx resolves from the repository's node_modules
  setsid node --import tsx e2e/prometheus/discovery.ts --out "$STATE/targets.json" </dev/null >"$STATE/discovery.log" 2>&1 &
  echo $! >"$STATE/discovery.pid"
  setsid prometheus --config.file="$STATE/prometheus.yml" --storage.tsdb.path="$STATE/data" \
    --storage.tsdb.retention.time=1d --web.listen-address="127.0.0.1:$PORT" --log.level=warn \
    </dev/null >"$STATE/prometheus.log" 2>&1 &
  echo $! >"$STATE/prometheus.pid"
  for _ in $(seq 150); do
    if curl -fsS "$URL/-/ready" >/dev/null 2>&1; then log "up on $URL (scrape interval $INTERVAL, state $STATE)"; echo "$URL"; return; fi
    alive prometheus || break
    sleep 0.2
  done
  log "prometheus did not become ready; see $STATE/prometheus.log"
  tail -5 "$STATE/prometheus.log" >&2 || true
  return 1
}

down() {
  stop_one prometheus
  stop_one discovery
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
