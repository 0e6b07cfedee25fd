#!/usr/bin/env bash
# Installs what Outrider needs to build, test and benchmark on Debian 12, idempotently:
# it asks dpkg first and calls apt only for packages that are missing.
#   scripts/setup.sh            build + test dependencies
#   scripts/setup.sh --fuzz     also clang for the libFuzzer targets
#   scripts/setup.sh --bench    also the peers the benchmarks start (RabbitMQ, NATS, Redis, nginx, wrk, gnuplot)
set -euo pipefail

build_packages=(
  cmake ninja-build g++ ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev
  libprotobuf-dev protobuf-compiler librabbitmq-dev
  libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 curl python3-py-zipkin
  libcpp-httplib-dev libsqlite3-dev  # examples/store-pickup/orders
  rabbitmq-server python3-pika
  chromium
)
bench_packages=(wrk nginx-light redis-server nats-server gnuplot-nox libhiredis-dev libnats-dev)

# --fuzz: clang for the libFuzzer targets (cmake -DOUTRIDER_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++).
fuzz_packages=(clang-14)

wanted=("${build_packages[@]}")
for arg in "$@"; do
  case "$arg" in
    --bench) wanted+=("${bench_packages[@]}") ;;
    --fuzz) wanted+=("${fuzz_packages[@]}") ;;
  esac
done

# The official Dapr JS SDK for the sidecar integration test (tests/sidecar/dapr-sdk): `npm ci`
# from the committed package-lock.json, only when node_modules does not already hold the pinned
# version (idempotent, and offline once it has run). Node.js itself comes from the machine image.
install_dapr_sdk() {
  local dir sdk_dir pinned installed
  dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  sdk_dir="$dir/tests/sidecar/dapr-sdk"
  command -v npm >/dev/null 2>&1 || { echo "setup: npm not found; the @dapr/dapr SDK test will skip" >&2; return 0; }
  [[ -f "$sdk_dir/package-lock.json" ]] || return 0
  pinned=$(sed -n 's/.*"@dapr\/dapr": *"\([^"]*\)".*/\1/p' "$sdk_dir/package.json")
  installed=""
  if [[ -f "$sdk_dir/node_modules/@dapr/dapr/package.json" ]]; then
    installed=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$sdk_dir/node_modules/@dapr/dapr/package.json" | head -1)
  fi
  if [[ -n "$pinned" && "$pinned" == "$installed" ]]; then
    return 0
  fi
  echo "setup: npm ci in tests/sidecar/dapr-sdk (@dapr/dapr $pinned)" >&2
  (cd "$sdk_dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
}
# The OpenTelemetry JS SDK for the tracing interop test (tests/tracing/otel-js): `npm ci` from the
# committed package-lock.json when the locked instrumentation-http is not installed (idempotent).
install_otel_js_app() {
  local dir app_dir pinned installed
  dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  app_dir="$dir/tests/tracing/otel-js"
  command -v npm >/dev/null 2>&1 || return 0
  [[ -f "$app_dir/package-lock.json" ]] || return 0
  pinned=$(sed -n 's/.*"@opentelemetry\/instrumentation-http": *"\([^"]*\)".*/\1/p' "$app_dir/package.json")
  installed=""
  if [[ -f "$app_dir/node_modules/@opentelemetry/instrumentation-http/package.json" ]]; then
    installed=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$app_dir/node_modules/@opentelemetry/instrumentation-http/package.json" | head -1)
  fi
  [[ -n "$pinned" && "$pinned" == "$installed" ]] && return 0
  echo "setup: npm ci in tests/tracing/otel-js (OpenTelemetry JS SDK)" >&2
  (cd "$app_dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
}
# The web UI (ui/): `npm ci` from its package-lock.json when node_modules does not hold exactly
# the locked packages (npm writes node_modules/.package-lock.json; it must be newer than the lock).
install_ui_packages() {
  local dir ui_dir
  dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  ui_dir="$dir/ui"
  command -v npm >/dev/null 2>&1 || { echo "setup: npm not found; the web UI will be a placeholder page" >&2; return 0; }
  [[ -f "$ui_dir/package-lock.json" ]] || return 0
  if [[ -f "$ui_dir/node_modules/.package-lock.json" && "$ui_dir/node_modules/.package-lock.json" -nt "$ui_dir/package-lock.json" ]]; then
    return 0
  fi
  echo "setup: npm ci in ui/ (the web UI's bundler, libraries and test tools)" >&2
  (cd "$ui_dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
}
missing=()
# Node.js and npm (SDK interop tests): the machine image usually ships them (NodeSource); only a
# machine without them gets Debian's, which would conflict with NodeSource's nodejs otherwise.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  wanted+=(nodejs npm)
fi
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  # Debian's service packages try to start their daemons; tests and benchmarks start their own.
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

install_dapr_sdk
install_otel_js_app
install_ui_packages
