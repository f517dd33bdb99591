#!/usr/bin/env bash
# Loopline's local cluster: real etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler built from their Go modules, plus KWOK-simulated GPU and CPU nodes,
# Kueue's controller manager (built from its module) queueing batch Jobs, a host bridge for the pods the
# local-kubelet runs, a real nats-server with JetStream, an S3 server
# (versitygw, posix backend) holding the artifacts, PostgreSQL (Debian's) for batch scoring output, and Traefik as the Gateway API data plane (the
# standard Gateway API CRDs, GatewayClass traefik, Gateway loopline-system/loopline-gateway). The control
# plane and the Gateway listen on loopback; what pods must reach (NATS, S3) listens on the bridge's host
# address, which is local to this machine too.
#
#   cluster.sh up       build binaries if needed, start the cluster, Kueue, NATS, S3 and Traefik (idempotent)
#   cluster.sh down     stop and delete everything this script and the local-kubelet made
#   cluster.sh status   show what is running
#   cluster.sh env      print export lines: KUBECONFIG, PATH (kubectl, helm, prometheus, promtool, toxiproxy-server), NATS_URL,
#                       GATEWAY_URL, TRAEFIK_ADMIN_URL, the pod network, the S3 endpoint, region, bucket
#                       and root keys as AWS_* (the AWS SDKs and CLI read those names), and
#                       LOOPLINE_POSTGRES_URL (the PostgreSQL connection string, password included)
#   cluster.sh build    only build the binaries (Kubernetes, KWOK, helm, Traefik, Kueue, Prometheus, Toxiproxy)
#
# LOOPLINE_CLUSTER names the cluster (default "loopline"); several can coexist. Ports: LOOPLINE_NATS_PORT,
# LOOPLINE_S3_PORT (default the NATS port + 3000), LOOPLINE_GATEWAY_PORT (the Gateway's listener; NATS
# port + 4000), LOOPLINE_TRAEFIK_ADMIN_PORT (Traefik's ping, API and metrics; NATS port + 5000),
# LOOPLINE_KUEUE_WEBHOOK_PORT and LOOPLINE_KUEUE_HEALTH_PORT (NATS port + 20000 and + 21000),
# LOOPLINE_POSTGRES_PORT (NATS port + 1000). The S3 root
# keys are made at the first `up` and kept in the cluster's state directory (mode 600); `down` deletes
# them with the bucket.
#
# Pod network, as the CNI bridge plugin makes one: each cluster has a bridge llbr<N> with the host
# address 198.19.<N>.1/24 (LOOPLINE_HOST_ADDRESS), N taken from a hash of the cluster name (the next
# free one if another cluster holds it; the bridge's alias "loopline cluster <name>" says whose it is).
# The local-kubelet gives each pod a network namespace ll<N>-<M> with address 198.19.<N>.<M> on a veth
# pair llv<N>-<M> <-> eth0. 198.19.0.0/16 is a benchmarking range (RFC 2544) routed nowhere; KWOK's
# simulated pods take 198.18.0.0/16. Anything pods must reach listens on LOOPLINE_HOST_ADDRESS.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
TRAEFIK_VERSION="${TRAEFIK_VERSION:-v3.6.25}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.4.1}"
KUEUE_VERSION="${KUEUE_VERSION:-v0.17.0}"
TOXIPROXY_VERSION="${TOXIPROXY_VERSION:-v2.12.0}"
CACHE="${LOOPLINE_CACHE:-$HOME/.cache/loopline}"
BIN="$CACHE/bin/kube-$KUBE_VERSION"
KUEUE_DIR="$CACHE/bin/kueue-$KUEUE_VERSION"
PROMETHEUS_BIN="$CACHE/bin/prometheus-$PROMETHEUS_VERSION"
TOXIPROXY_BIN="$CACHE/bin/toxiproxy-$TOXIPROXY_VERSION"
NAME="${LOOPLINE_CLUSTER:-loopline}"
STATE="$CACHE/clusters/$NAME"
# etcd keeps its data in memory (tmpfs) when the machine has one: these clusters are thrown away, and the
# kernel's write-back of etcd's files to disk cost as much CPU as etcd itself under load.
if [[ -d /dev/shm && -w /dev/shm ]]; then ETCD_DIR="/dev/shm/loopline-etcd-$NAME"; else ETCD_DIR="$CACHE/kwok/clusters/$NAME/etcd"; fi
KUBECONFIG_PATH="$STATE/kubeconfig"
NATS_PORT="${LOOPLINE_NATS_PORT:-$([[ $NAME == loopline ]] && echo 4222 || echo 4223)}"
S3_PORT="${LOOPLINE_S3_PORT:-$((NATS_PORT + 3000))}"
S3_REGION=us-east-1
S3_BUCKET=loopline
VERSITYGW="$CACHE/bin/versitygw-$VERSITYGW_VERSION/versitygw"
GATEWAY_PORT="${LOOPLINE_GATEWAY_PORT:-$((NATS_PORT + 4000))}"
TRAEFIK_ADMIN_PORT="${LOOPLINE_TRAEFIK_ADMIN_PORT:-$((NATS_PORT + 5000))}"
TRAEFIK="$CACHE/bin/traefik-$TRAEFIK_VERSION/traefik"
POSTGRES_PORT="${LOOPLINE_POSTGRES_PORT:-$((NATS_PORT + 1000))}"
# Below /tmp, not the cache: the server runs as the postgres user, who cannot enter root's home.
POSTGRES_DIR="/tmp/loopline-postgres-$NAME"
POSTGRES="$HERE/../postgres/postgres.sh"
POD_ALIAS="loopline cluster $NAME"
# Kueue's webhook server and health probes; offsets of NATS_PORT, so clusters apart in NATS are apart here too.
KUEUE_WEBHOOK_PORT="${LOOPLINE_KUEUE_WEBHOOK_PORT:-$((NATS_PORT + 20000))}"
KUEUE_HEALTH_PORT="${LOOPLINE_KUEUE_HEALTH_PORT:-$((NATS_PORT + 21000))}"
export KWOK_WORKDIR="$CACHE/kwok"
export KWOK_KUBE_VERSION="$KUBE_VERSION"

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
kwokctl() { "$BIN/kwokctl" --name "$NAME" -v WARN "$@"; }

ensure_binaries() {
  local b
  for b in "$BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,etcd,kwok,kwokctl,helm} "$TRAEFIK" "$PROMETHEUS_BIN"/{prometheus,promtool}; do
    [[ -x "$b" ]] || { log "building Kubernetes $KUBE_VERSION, Traefik $TRAEFIK_VERSION and Prometheus $PROMETHEUS_VERSION binaries from Go modules (first run only; about 25 min on 2 cores)"; bash "$HERE/build-binaries.sh"; return; }
  done
  [[ -x "$KUEUE_DIR/kueue" && -d "$KUEUE_DIR/crds" ]] || { log "building Kueue $KUEUE_VERSION from its Go module (first run only)"; bash "$HERE/build-binaries.sh"; }
  [[ -x "$TOXIPROXY_BIN/toxiproxy-server" ]] || { log "building Toxiproxy $TOXIPROXY_VERSION from its Go module (first run only; about a minute)"; bash "$HERE/build-binaries.sh" toxiproxy; }
}

ensure_nats() {
  if ! command -v nats-server >/dev/null; then
    log "installing nats-server (Debian)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server) >/dev/null
  fi
}

# versitygw from its Go module; `go install` takes it as it is (its go.mod has no replace directives).
ensure_versitygw() {
  [[ -x "$VERSITYGW" ]] && return
  log "building versitygw $VERSITYGW_VERSION from its Go module (first run only; about 3 min on 2 cores)"
  CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod GOBIN="$(dirname "$VERSITYGW")" \
    go install -trimpath -ldflags "-s -w -X=main.Version=$VERSITYGW_VERSION" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
}

# The /24 of 198.19.0.0/16 this cluster's pods use: the one its bridge has, else the first free one
# from a hash of its name.
pod_slot() {
  local link start slot i
  for link in /sys/class/net/llbr*; do
    [[ -e $link && "$(cat "$link/ifalias" 2>/dev/null)" == "$POD_ALIAS" ]] && { echo "${link##*/llbr}"; return; }
  done
  start=$(( $(cksum <<<"$NAME" | cut -d' ' -f1) % 256 ))
  for ((i = 0; i < 256; i++)); do
    slot=$(( (start + i) % 256 ))
    [[ -e /sys/class/net/llbr$slot ]] || { echo "$slot"; return; }
  done
  log "no free pod subnet left in 198.19.0.0/16 (256 bridges llbr*)"; return 1
}
SLOT="$(pod_slot)"
POD_BRIDGE="llbr$SLOT"
POD_SUBNET="198.19.$SLOT.0/24"
HOST_ADDRESS="198.19.$SLOT.1"

ensure_bridge() {
  [[ -e /sys/class/net/$POD_BRIDGE ]] && return
  ip link add "$POD_BRIDGE" type bridge
  ip link set "$POD_BRIDGE" alias "$POD_ALIAS"
  ip addr add "$HOST_ADDRESS/24" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
}

# Every pod namespace of this cluster (and what still runs in it), its veths, the bridge and its
# address; the local-kubelet's address leases of the subnet.
remove_pod_network() {
  local netns pid link killed=()
  for netns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^ll$SLOT-[0-9]+$"); do
    for pid in $(ip netns pids "$netns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null && killed+=("$pid"); done
    ip netns del "$netns" 2>/dev/null || true
  done
  for pid in "${killed[@]}"; do
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  done
  for link in /sys/class/net/llv"$SLOT"-*; do [[ -e $link ]] && ip link del "${link##*/}" 2>/dev/null || true; done
  if [[ -e /sys/class/net/$POD_BRIDGE ]]; then ip link del "$POD_BRIDGE"; fi
  rm -f "$CACHE/local-kubelet/addresses/198.19.$SLOT."*
}

# Running, not yet gone: a zombie (dead, its exit status not yet collected) does not count.
alive() { [[ -e /proc/$1 ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

cluster_running() {
  [[ -f "$KUBECONFIG_PATH" ]] && kubectl get --raw /readyz >/dev/null 2>&1
}

nats_running() { [[ -f "$STATE/nats.pid" ]] && kill -0 "$(cat "$STATE/nats.pid")" 2>/dev/null; }

start_nats() {
  nats_running && return
  mkdir -p "$STATE/nats"
  # Detached from our stdio so callers that capture our output are not held open.
  setsid nats-server -a "$HOST_ADDRESS" -p "$NATS_PORT" -js -sd "$STATE/nats" -n "loopline-$NAME" -l "$STATE/nats.log" </dev/null >/dev/null 2>&1 &
  echo $! > "$STATE/nats.pid"
  for _ in $(seq 50); do (exec 3<>/dev/tcp/"$HOST_ADDRESS"/"$NATS_PORT") 2>/dev/null && return; sleep 0.1; done
  log "nats-server did not start; see $STATE/nats.log"; return 1
}

s3_running() { [[ -f "$STATE/s3.pid" ]] && kill -0 "$(cat "$STATE/s3.pid")" 2>/dev/null; }

# The root keys of this cluster's S3 server, made once: an access key id of 20 and a secret of 40 characters.
s3_keys() {
  local file="$STATE/s3/root-keys"
  if [[ ! -f "$file" ]]; then
    mkdir -p "$STATE/s3"
    (umask 077; printf 'S3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\n' \
      "$(LC_ALL=C tr -dc 'A-Z0-9' </dev/urandom | head -c 20)" "$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)" >"$file")
  fi
  # shellcheck disable=SC1090
  source "$file"
}

start_s3() {
  s3_keys
  if ! s3_running; then
    mkdir -p "$STATE/s3/data"
    # The keys through the environment, not argv: a command line is readable by every user of the machine.
    ROOT_ACCESS_KEY_ID="$S3_ACCESS_KEY" ROOT_SECRET_ACCESS_KEY="$S3_SECRET_KEY" setsid "$VERSITYGW" \
      --port "$HOST_ADDRESS:$S3_PORT" --region "$S3_REGION" --quiet posix "$STATE/s3/data" </dev/null >"$STATE/s3.log" 2>&1 &
    echo $! > "$STATE/s3.pid"
  fi
  local _
  for _ in $(seq 50); do curl -s -o /dev/null "http://$HOST_ADDRESS:$S3_PORT/" && break; sleep 0.1; done
  # CreateBucket signed with SigV4 by curl (the keys go in on stdin; the header is the empty body's sha256,
  # which S3 wants signed). 409 is "you own it already".
  local code
  code="$(printf 'user = "%s:%s"\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" | curl -s -K - -o "$STATE/s3/create-bucket.xml" -w '%{http_code}' \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" -H "x-amz-content-sha256: $(sha256sum </dev/null | cut -d' ' -f1)" \
    -X PUT "http://$HOST_ADDRESS:$S3_PORT/$S3_BUCKET")" || true
  [[ $code == 200 || $code == 409 ]] && return
  log "versitygw did not create bucket $S3_BUCKET (HTTP $code); see $STATE/s3.log and $STATE/s3/create-bucket.xml"; return 1
}

# Directory of a Go module version in the module cache (fetched through the Go module proxy once).
module_dir() { GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }

# Every standard-channel Gateway API CRD of one release, and Traefik's own CRDs (IngressRoute, TraefikService,
# ...) as its module ships them: the kubernetesCRD provider watches all of its kinds.
apply_crds() {
  local gateway_api traefik
  gateway_api="$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")"
  traefik="$(module_dir "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")"
  kubectl apply --server-side --force-conflicts -f "$gateway_api/config/crd/standard/" \
    -f "$traefik/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
}

apply_gateway() {
  kubectl apply --server-side -f - >/dev/null <<GATEWAY
apiVersion: v1
kind: Namespace
metadata: { name: loopline-system }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: traefik }
spec:
  controllerName: traefik.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: loopline-gateway, namespace: loopline-system }
spec:
  gatewayClassName: traefik
  listeners:
    - name: http
      protocol: HTTP
      # Traefik binds a listener to the entry point with the same port.
      port: $GATEWAY_PORT
      allowedRoutes: { namespaces: { from: All } }
GATEWAY
}

traefik_running() { [[ -f "$STATE/traefik.pid" ]] && kill -0 "$(cat "$STATE/traefik.pid")" 2>/dev/null; }

# Traefik runs beside the control plane, as a cluster's ingress controller would, with the admin kubeconfig.
# It reports 127.0.0.1 as the Gateway's address. Each provider rebuilds its configuration at most every
# 500 ms (a burst of route writes, 1000 InferenceServices created at once, costs a few rebuilds, not one
# per object), and a new configuration is applied at once (the default holds it back for 2 s).
start_traefik() {
  if ! traefik_running; then
    KUBECONFIG="$KUBECONFIG_PATH" setsid "$TRAEFIK" \
      --global.checkNewVersion=false --global.sendAnonymousUsage=false \
      --entryPoints.web.address="127.0.0.1:$GATEWAY_PORT" \
      --entryPoints.traefik.address="127.0.0.1:$TRAEFIK_ADMIN_PORT" \
      --ping=true --api.insecure=true --api.dashboard=false --metrics.prometheus=true \
      --providers.providersThrottleDuration=0s \
      --providers.kubernetesGateway=true --providers.kubernetesGateway.statusAddress.ip=127.0.0.1 \
      --providers.kubernetesGateway.throttleDuration=500ms \
      --providers.kubernetesCRD=true --providers.kubernetesCRD.allowEmptyServices=true \
      --providers.kubernetesCRD.throttleDuration=500ms \
      --log.level=INFO --log.format=json --log.filePath="$STATE/traefik.log" \
      </dev/null >/dev/null 2>&1 &
    echo $! > "$STATE/traefik.pid"
  fi
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$TRAEFIK_ADMIN_PORT/ping" >/dev/null 2>&1 && break; sleep 0.1; done
  kubectl wait --for=condition=Programmed gateway/loopline-gateway -n loopline-system --timeout=60s >/dev/null ||
    { log "Traefik did not program gateway loopline-gateway; see $STATE/traefik.log"; return 1; }
}

apply_nodes() {
  local i
  { for i in 0 1; do cat <<NODE
apiVersion: v1
kind: Node
metadata:
  name: gpu-node-$i
  annotations: { kwok.x-k8s.io/node: fake }
  labels:
    kubernetes.io/hostname: gpu-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    node.kubernetes.io/instance-type: a2-ultragpu-8g
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB
    nvidia.com/gpu.count: "8"
spec:
  taints: [{ key: nvidia.com/gpu, value: present, effect: NoSchedule }]
status:
  capacity: { cpu: "96", memory: 1360Gi, pods: "110", nvidia.com/gpu: "8" }
  allocatable: { cpu: "96", memory: 1360Gi, pods: "110", nvidia.com/gpu: "8" }
---
apiVersion: v1
kind: Node
metadata:
  name: cpu-node-$i
  annotations: { kwok.x-k8s.io/node: fake }
  labels:
    kubernetes.io/hostname: cpu-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    node.kubernetes.io/instance-type: n2-standard-32
status:
  capacity: { cpu: "32", memory: 128Gi, pods: "110" }
  allocatable: { cpu: "32", memory: 128Gi, pods: "110" }
---
NODE
  done; } | kubectl apply -f - >/dev/null
  kubectl wait --for=condition=Ready node --all --timeout=60s >/dev/null
}

kueue_running() { [[ -f "$STATE/kueue.pid" ]] && kill -0 "$(cat "$STATE/kueue.pid")" 2>/dev/null; }

# A CA and a serving certificate for 127.0.0.1, made once per cluster: the API server calls Kueue's webhooks
# at https://127.0.0.1:<port>, so the certificate names that address (Kueue's internal certificates name a
# Service's DNS name, which the API server, a local process, cannot resolve).
kueue_certs() {
  local dir="$STATE/kueue/certs"
  [[ -s "$dir/tls.crt" && -s "$dir/ca.crt" ]] && return
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=loopline-kueue-ca-$NAME" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kueue-webhook" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') -out "$dir/tls.crt" 2>/dev/null
  rm -f "$dir/tls.csr"
}

# Kueue's controller manager reads its metrics certificate from a fixed path when it does not manage its own
# certificates (cmd/kueue/main.go: /etc/kueue/metrics/certs); its metrics server stays off here
# (bindAddress "0"), but the file must exist. Shared by every cluster on this machine.
kueue_metrics_cert() {
  local dir=/etc/kueue/metrics/certs
  [[ -s "$dir/tls.crt" && -s "$dir/tls.key" ]] && return
  mkdir -p "$dir" 2>/dev/null && cp "$STATE/kueue/certs/tls.crt" "$STATE/kueue/certs/tls.key" "$dir/" 2>/dev/null || {
    log "Kueue needs a certificate in $dir (a path fixed in Kueue); create it as root: sudo mkdir -p $dir && sudo cp $STATE/kueue/certs/tls.{crt,key} $dir/"
    return 1
  }
}

start_kueue() {
  kueue_running && return
  local start=$SECONDS
  kueue_certs
  kueue_metrics_cert
  kubectl apply --server-side --force-conflicts -f "$KUEUE_DIR/crds" >/dev/null
  kubectl create namespace kueue-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  local ca; ca="$(base64 -w0 < "$STATE/kueue/certs/ca.crt")"
  sed -e "s|KUEUE_WEBHOOK_URL|https://127.0.0.1:$KUEUE_WEBHOOK_PORT|g" -e "s|KUEUE_CA_BUNDLE|$ca|g" "$HERE/kueue-webhooks.yaml" | kubectl apply -f - >/dev/null
  # Kueue's CRDs that keep two API versions convert through its webhook, as in Kueue's own install.
  local crd
  for crd in localqueues clusterqueues workloads cohorts multikueueclusters; do
    kubectl patch crd "$crd.kueue.x-k8s.io" --type merge -p "{\"spec\":{\"conversion\":{\"strategy\":\"Webhook\",\"webhook\":{\"conversionReviewVersions\":[\"v1\"],\"clientConfig\":{\"url\":\"https://127.0.0.1:$KUEUE_WEBHOOK_PORT/convert\",\"caBundle\":\"$ca\"}}}}}" >/dev/null
  done
  cat > "$STATE/kueue/config.yaml" <<CONFIG
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health:
  healthProbeBindAddress: 127.0.0.1:$KUEUE_HEALTH_PORT
metrics:
  bindAddress: "0"
webhook:
  host: 127.0.0.1
  port: $KUEUE_WEBHOOK_PORT
  certDir: $STATE/kueue/certs
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
manageJobsWithoutQueueName: false
clientConnection:
  qps: 100
  burst: 200
integrations:
  frameworks: ["batch/job"]
# The on-demand visibility API is an aggregated API server of its own (fixed certificate path, port 8082).
featureGates:
  VisibilityOnDemand: false
CONFIG
  setsid "$KUEUE_DIR/kueue" --config "$STATE/kueue/config.yaml" --kubeconfig "$KUBECONFIG_PATH" --zap-log-level=info \
    </dev/null >"$STATE/kueue.log" 2>&1 &
  echo $! > "$STATE/kueue.pid"
  for _ in $(seq 600); do
    if curl -sf "http://127.0.0.1:$KUEUE_HEALTH_PORT/readyz" >/dev/null 2>&1 && kubectl apply -f "$HERE/kueue-queues.yaml" >/dev/null 2>&1; then
      log "kueue $KUEUE_VERSION serving webhooks on 127.0.0.1:$KUEUE_WEBHOOK_PORT after $((SECONDS - start))s"
      return
    fi
    kueue_running || break
    sleep 0.2
  done
  log "kueue did not start; see $STATE/kueue.log"; tail -5 "$STATE/kueue.log" >&2; return 1
}

stop_kueue() {
  if kueue_running; then
    local pid; pid="$(cat "$STATE/kueue.pid")"
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$STATE/kueue.pid"
}

up() {
  local start=$SECONDS
  ensure_binaries
  ensure_versitygw
  ensure_nats
  mkdir -p "$STATE"
  ensure_bridge
  if ! cluster_running; then
    # Kueue keeps what it learnt from the API server it started with; it starts again with the cluster.
    stop_kueue
    if [[ -d "$KWOK_WORKDIR/clusters/$NAME" && ! -d "$ETCD_DIR" ]]; then
      log "etcd data of $NAME is gone (tmpfs cleared): creating it afresh"
      kwokctl delete cluster >&2 || true
    fi
    if [[ -d "$KWOK_WORKDIR/clusters/$NAME" ]]; then
      log "restarting existing cluster $NAME"
      kwokctl start cluster >&2 || { kwokctl delete cluster >&2 || true; }
    fi
    if ! cluster_running; then
      log "creating cluster $NAME (Kubernetes $KUBE_VERSION, KWOK $KWOK_VERSION)"
      # The controller-manager and the scheduler run once each, without leader election: with it, a lease
      # renewal that timed out while the API server was saturated (deleting 1000 InferenceServices) made
      # both exit, and nothing restarts them here.
      # kwokctl 0.8.0 files a component's second --extra-args by the position of its first (a panic, or the
      # wrong component) unless every argument before that first one is the only one of its component: keep
      # kwok-controller's pair where it is; further flags go to components without one, or into kwok.yaml.
      kwokctl create cluster --runtime binary \
        --kube-apiserver-binary "$BIN/kube-apiserver" \
        --kube-controller-manager-binary "$BIN/kube-controller-manager" \
        --kube-scheduler-binary "$BIN/kube-scheduler" \
        --kwok-controller-binary "$BIN/kwok" \
        --etcd-binary "$BIN/etcd" \
        --config "$HERE/kwok.yaml" \
        --kubeconfig "$KUBECONFIG_PATH" \
        --extra-args kube-apiserver=service-cluster-ip-range=10.96.0.0/16 \
        --extra-args kwok-controller=cidr=198.18.0.1/16 \
        --extra-args kwok-controller=node-ip="$HOST_ADDRESS" \
        --extra-args "etcd=data-dir=$ETCD_DIR" \
        --extra-args kube-controller-manager=leader-elect=false \
        --extra-args kube-scheduler=leader-elect=false \
        --disable-qps-limits \
        --wait 120s >&2
    fi
  fi
  apply_nodes
  start_kueue
  start_nats
  start_s3
  bash "$POSTGRES" start "$POSTGRES_DIR" "$POSTGRES_PORT" "127.0.0.1,$HOST_ADDRESS"
  apply_crds
  apply_gateway
  start_traefik
  log "cluster $NAME up in $((SECONDS - start))s; kubeconfig $KUBECONFIG_PATH; NATS nats://$HOST_ADDRESS:$NATS_PORT; S3 http://$HOST_ADDRESS:$S3_PORT (bucket $S3_BUCKET); PostgreSQL $HOST_ADDRESS:$POSTGRES_PORT; gateway http://127.0.0.1:$GATEWAY_PORT; pods on $POD_BRIDGE ($POD_SUBNET)"
  echo "$KUBECONFIG_PATH"
}

down() {
  stop_kueue
  if traefik_running; then
    kill "$(cat "$STATE/traefik.pid")"
    for _ in $(seq 50); do traefik_running || break; sleep 0.1; done
  fi
  if [[ -x "$BIN/kwokctl" && -d "$KWOK_WORKDIR/clusters/$NAME" ]]; then kwokctl delete cluster >&2 || true; fi
  rm -rf "$ETCD_DIR"
  if nats_running; then kill "$(cat "$STATE/nats.pid")"; fi
  if s3_running; then kill "$(cat "$STATE/s3.pid")"; fi
  bash "$POSTGRES" stop "$POSTGRES_DIR"
  remove_pod_network
  rm -rf "$STATE"
  log "cluster $NAME deleted"
}

status() {
  if cluster_running; then
    echo "cluster $NAME: running ($(kubectl version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1)), kubeconfig $KUBECONFIG_PATH"
    kubectl get nodes -L nvidia.com/gpu.product
  else
    echo "cluster $NAME: not running"
  fi
  if kueue_running; then echo "kueue: running ($KUEUE_VERSION), webhooks on https://127.0.0.1:$KUEUE_WEBHOOK_PORT, log $STATE/kueue.log"; else echo "kueue: not running"; fi
  if nats_running; then echo "nats: running on nats://$HOST_ADDRESS:$NATS_PORT"; else echo "nats: not running"; fi
  if [[ -e /sys/class/net/$POD_BRIDGE ]]; then
    echo "pod network: $POD_BRIDGE $POD_SUBNET, $(ip netns list | grep -cE "^ll$SLOT-[0-9]+( |$)") pod namespaces"
  else
    echo "pod network: none"
  fi
  if s3_running; then echo "s3: versitygw running on http://$HOST_ADDRESS:$S3_PORT, bucket $S3_BUCKET"; else echo "s3: not running"; fi
  if [[ -f "$POSTGRES_DIR/data/postmaster.pid" ]]; then echo "postgres: running on $HOST_ADDRESS:$POSTGRES_PORT, database loopline"; else echo "postgres: not running"; fi
  if traefik_running; then echo "traefik: gateway http://127.0.0.1:$GATEWAY_PORT, admin http://127.0.0.1:$TRAEFIK_ADMIN_PORT"; else echo "traefik: not running"; fi
}

env_lines() {
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
  echo "export PATH=$BIN:$PROMETHEUS_BIN:$TOXIPROXY_BIN:\$PATH"
  echo "export NATS_URL=nats://$HOST_ADDRESS:$NATS_PORT"
  echo "export GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT"
  echo "export TRAEFIK_ADMIN_URL=http://127.0.0.1:$TRAEFIK_ADMIN_PORT"
  echo "export LOOPLINE_HOST_ADDRESS=$HOST_ADDRESS"
  echo "export LOOPLINE_POD_BRIDGE=$POD_BRIDGE"
  echo "export LOOPLINE_POD_SUBNET=$POD_SUBNET"
  echo "export LOOPLINE_CACHE=$CACHE"
  if [[ -f "$STATE/s3/root-keys" ]]; then
    s3_keys
    echo "export AWS_ENDPOINT_URL_S3=http://$HOST_ADDRESS:$S3_PORT"
    echo "export AWS_REGION=$S3_REGION"
    echo "export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY"
    echo "export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY"
    echo "export S3_FORCE_PATH_STYLE=true"
    echo "export LOOPLINE_S3_BUCKET=$S3_BUCKET"
  fi
  if [[ -f "$POSTGRES_DIR/password" ]]; then
    echo "export LOOPLINE_POSTGRES_URL=$(bash "$POSTGRES" url "$POSTGRES_DIR" "$POSTGRES_PORT" "$HOST_ADDRESS")"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_lines ;;
  build) ensure_binaries; ensure_versitygw ;;
  *) echo "usage: $0 up|down|status|env|build" >&2; exit 2 ;;
esac
