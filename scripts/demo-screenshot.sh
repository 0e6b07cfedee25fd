#!/usr/bin/env bash
# Retakes the README's picture of the store-pickup demo's own trace: runs the demo's browser test
# (CTest demo_browser.storefront_and_trace_in_chromium: `outrider dev` with the demo, an order
# placed on the storefront page that expires and is refunded, its trace opened in the UI) and
# copies the trace screenshot it takes to docs/images/store-pickup-trace.png.
#   scripts/demo-screenshot.sh [build dir]     (default build/release; build it first)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build/release}
(cd "$build_dir" && ctest -R 'demo_browser\.storefront_and_trace_in_chromium' --output-on-failure)
cp "$build_dir/demo-screenshots/trace.png" docs/images/store-pickup-trace.png
cp "$build_dir/demo-screenshots/storefront.png" docs/images/store-pickup-storefront.png
echo "docs/images/store-pickup-trace.png and store-pickup-storefront.png updated"
