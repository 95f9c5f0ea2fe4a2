#!/usr/bin/env bash
# The core crate decides and never does I/O (issue #16). Its normal dependency tree must hold
# no Kubernetes client or runtime, no HTTP stack, and no tokio with network or file features.
# Run from the repository root; exits non-zero, naming the offender, when one appears.
set -euo pipefail
cd "$(dirname "$0")/.."

tree="$(cargo tree -p mcpguard-core -e normal --prefix none --locked | sed 's/ (\*)$//' | sort -u)"
forbidden='^(kube|kube-client|kube-runtime|axum|axum-core|hyper|hyper-util|reqwest|tower|tower-http|tokio-rustls|kube-lease-manager) v'
if offenders="$(grep -E "${forbidden}" <<<"${tree}")"; then
  echo "mcpguard-core depends on an I/O crate:" >&2
  echo "${offenders}" >&2
  for crate in $(awk '{print $1}' <<<"${offenders}"); do
    cargo tree -p mcpguard-core -e normal -i "${crate}" --locked >&2 || true
  done
  exit 1
fi
echo "mcpguard-core: $(wc -l <<<"${tree}") crates, none of kube client/runtime, axum, hyper, reqwest, tower"

if grep -qE '^tokio v' <<<"${tree}"; then
  features="$(cargo tree -p mcpguard-core -e normal,features -i tokio --locked)"
  if grep -E 'tokio feature "(net|fs|full|process|signal|io-std)"' <<<"${features}" >&2; then
    echo "mcpguard-core pulls tokio with I/O features (above)" >&2
    exit 1
  fi
  echo "mcpguard-core: tokio present without net/fs features"
else
  echo "mcpguard-core: no tokio at all"
fi
