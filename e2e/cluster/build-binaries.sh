#!/usr/bin/env bash
# Builds the local cluster's binaries from their published Go modules at pinned
# versions and caches them outside the repository. Re-running is a no-op once a
# binary exists, so a warm machine pays nothing.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
TRAEFIK_VERSION="${TRAEFIK_VERSION:-v3.6.25}"
KUEUE_VERSION="${KUEUE_VERSION:-v0.17.0}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
TOXIPROXY_VERSION="${TOXIPROXY_VERSION:-v2.12.0}"

CACHE="${LOOPLINE_CACHE:-$HOME/.cache/loopline}"
BIN="$CACHE/bin/kube-$KUBE_VERSION"
WORK="$CACHE/build"
mkdir -p "$BIN" "$WORK"
# One build at a time per cache: builds share $WORK and would delete each other's wrapper modules
# (several clusters of one machine, a CI run beside a developer's). A second caller waits, then finds
# what the first built cached.
exec 9>"$CACHE/build.lock"
if ! flock -n 9; then
  printf '[build %s] waiting for another build of %s to finish\n' "$(date +%H:%M:%S)" "$CACHE" >&2
  flock 9
fi
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Builds the main packages of one module version inside a throwaway wrapper
# module, because `go install pkg@version` refuses modules with replace directives.
# The binaries go to $OUT (default $BIN).
build_in_wrapper() {
  local name="$1" require="$2" replaces="$3" ldflags="$4"; shift 4
  local dir="$WORK/$name" out="${OUT:-$BIN}" missing=()
  mkdir -p "$out"
  for pkg in "$@"; do [[ -x "$out/$(basename "$pkg")" ]] || missing+=("$pkg"); done
  if ((${#missing[@]} == 0)); then log "$name: cached"; return; fi
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  printf 'module loopline.dev/build/%s\n\ngo 1.26\n\nrequire %s\n%s\n' "$name" "$require" "$replaces" > go.mod
  # The module's own go.sum pins its dependencies' hashes; the checksum database need not be asked for them.
  cp "$(go mod download -json ${require/ /@} | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/go.sum" go.sum 2>/dev/null || true
  { echo '//go:build tools'; echo 'package tools'; echo 'import ('
    for pkg in "$@"; do echo "  _ \"$pkg\""; done; echo ')'; } > tools.go
  log "$name: resolving modules"
  go mod tidy >/dev/null
  for pkg in "${missing[@]}"; do
    log "$name: building $(basename "$pkg")"
    go build -trimpath -ldflags "-s -w $ldflags" -o "$out/$(basename "$pkg")" "$pkg"
  done
}

kube_replaces() {
  local modfile
  modfile="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  echo "replace ("
  grep -E '^\s*k8s\.io/[a-z-]+ => \./staging' "$modfile" | awk -v v="${KUBE_VERSION/v1./v0.}" '{print "  " $1 " => " $1 " " v}'
  echo ")"
}

# The replace and exclude directives of a module's go.mod, verbatim.
go_mod_directives() {
  local modfile
  modfile="$(go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  awk '/^(replace|exclude) \(/ { block = 1 } block || /^(replace|exclude) [^(]/ { print } block && /^\)/ { block = 0 }' "$modfile"
}

# Kueue's go.mod has no replace directives, so `go install pkg@version` builds it exactly as released; only its
# controller manager (cmd/kueue). Its CRDs come from the same module and sit beside the binary.
KUEUE_DIR="$CACHE/bin/kueue-$KUEUE_VERSION"
build_kueue() {
  if [[ -x "$KUEUE_DIR/kueue" && -d "$KUEUE_DIR/crds" ]]; then log "kueue: cached"; return; fi
  mkdir -p "$KUEUE_DIR"
  log "kueue: building cmd/kueue $KUEUE_VERSION"
  GOFLAGS= GOBIN="$KUEUE_DIR" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
  local src
  src="$(GOFLAGS= go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  rm -rf "$KUEUE_DIR/crds.tmp" && mkdir -p "$KUEUE_DIR/crds.tmp"
  cp "$src"/config/components/crd/bases/*.yaml "$KUEUE_DIR/crds.tmp/" && chmod u+w "$KUEUE_DIR"/crds.tmp/*.yaml
  mv "$KUEUE_DIR/crds.tmp" "$KUEUE_DIR/crds"
}

# Prometheus and promtool with Kubernetes service discovery only (besides file and static, which are
# always in): the plugins' build tags drop every other cloud's discovery and its SDK. No web UI assets
# (tag builtinassets): the API is what the canary analysis and the tests use. Its go.mod has no replace
# directives, so `go install` takes it as it is.
build_prometheus() {
  local out="$CACHE/bin/prometheus-$PROMETHEUS_VERSION" dir
  if [[ -x $out/prometheus && -x $out/promtool ]]; then log "prometheus: cached"; return; fi
  dir="$(go mod download -json "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  log "prometheus: building prometheus and promtool $(cat "$dir/VERSION")"
  GOBIN="$out" go install -tags remove_all_sd,enable_kubernetes_sd -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$(cat "$dir/VERSION")" \
    "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
}

# Toxiproxy's server, the fault-injection proxy of the chaos suite (e2e/chaos). Its go.mod has no replace
# directives, so `go install` takes it as released; the package is cmd/server, installed as toxiproxy-server.
build_toxiproxy() {
  local out="$CACHE/bin/toxiproxy-$TOXIPROXY_VERSION"
  if [[ -x $out/toxiproxy-server ]]; then log "toxiproxy: cached"; return; fi
  log "toxiproxy: building cmd/server $TOXIPROXY_VERSION"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  GOFLAGS= GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w -X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  mkdir -p "$out" && mv "$out.tmp/server" "$out/toxiproxy-server" && rm -rf "$out.tmp"
}

if [[ ${1:-} == toxiproxy ]]; then build_toxiproxy; exit; fi

start=$(date +%s)
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
cd "$WORK"
build_in_wrapper kubernetes "k8s.io/kubernetes $KUBE_VERSION" "$(cd "$WORK" && kube_replaces)" "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
build_in_wrapper etcd "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "" "" go.etcd.io/etcd/server/v3
[[ -x "$BIN/v3" ]] && mv "$BIN/v3" "$BIN/etcd"
build_in_wrapper kwok "sigs.k8s.io/kwok $KWOK_VERSION" "" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
  sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
build_in_wrapper helm "helm.sh/helm/v3 $HELM_VERSION" "" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm.sh/helm/v3/cmd/helm
# Traefik's go.mod replaces two forks and excludes a tencentcloud version (an ambiguous import otherwise);
# neither applies outside the main module, so the wrapper carries them.
OUT="$CACHE/bin/traefik-$TRAEFIK_VERSION" build_in_wrapper traefik "github.com/traefik/traefik/v3 $TRAEFIK_VERSION" \
  "$(cd "$WORK" && go_mod_directives "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")" \
  "-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" github.com/traefik/traefik/v3/cmd/traefik
build_kueue
build_prometheus
build_toxiproxy
log "all binaries in $BIN, $KUEUE_DIR, $CACHE/bin/prometheus-$PROMETHEUS_VERSION and $CACHE/bin/toxiproxy-$TOXIPROXY_VERSION after $(( $(date +%s) - start ))s"
