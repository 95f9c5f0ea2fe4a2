#!/usr/bin/env bash
# Builds mcpguard's container image: a statically linked release binary in an image FROM
# scratch (Containerfile). The tag is the file IMAGE, the one place the manifests' image
# reference comes from too (tests/manifests.rs keeps them equal).
#
#   build/image.sh                  build the binary (cargo) and the image
#   MCPGUARD_BINARY=path build/image.sh   use an already built static binary
#   CONTAINER_ENGINE=docker build/image.sh   choose the engine (default: the first of
#                                   podman, buildah, docker that works)
#
# Prints the image reference on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

image="$(tr -d '[:space:]' < IMAGE)"
version="${image##*:}"
target=x86_64-unknown-linux-gnu

if [ -z "${MCPGUARD_BINARY:-}" ]; then
  # glibc's static libraries are linked in: the image has no libc. rustls uses ring, so
  # there is no OpenSSL to link; in a cluster the API server is reached by
  # KUBERNETES_SERVICE_HOST (an IP), so glibc's NSS-based name lookup is never needed.
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "${target}"
  MCPGUARD_BINARY="target/${target}/release/mcpguard"
fi
# ldd lists shared libraries as "name => path"; a static binary has none.
linkage="$(ldd "${MCPGUARD_BINARY}" 2>&1 || true)"
if grep -q '=>' <<<"${linkage}"; then
  echo "build/image.sh: ${MCPGUARD_BINARY} is dynamically linked; an image FROM scratch needs a static binary" >&2
  exit 1
fi

engine="${CONTAINER_ENGINE:-}"
if [ -z "${engine}" ]; then
  for candidate in podman buildah docker; do
    if ! command -v "${candidate}" >/dev/null 2>&1; then continue; fi
    # A docker client without a reachable daemon cannot build.
    if [ "${candidate}" = docker ] && ! docker info >/dev/null 2>&1; then continue; fi
    engine="${candidate}"
    break
  done
fi
if [ -z "${engine}" ]; then
  echo "build/image.sh: none of podman, buildah or docker (with a running daemon) is available" >&2
  exit 1
fi
if [ "${engine}" != docker ] && [ -z "${CONTAINERS_CONF:-}" ]; then
  export CONTAINERS_CONF="${PWD}/build/containers.conf"
fi

# The build context is the binary alone: nothing else can reach the image.
context="$(mktemp -d)"
trap 'rm -rf "${context}"' EXIT
cp "${MCPGUARD_BINARY}" "${context}/mcpguard"
cp Containerfile "${context}/Containerfile"

case "${engine}" in
  buildah) build=(buildah build) ;;
  *) build=("${engine}" build) ;;
esac
"${build[@]}" --file "${context}/Containerfile" --build-arg "VERSION=${version}" \
  --tag "${image}" "${context}" >&2
echo "${image}"
