#!/usr/bin/env bash
# The main job of `make run`. Today: the outrider binary's version and help (the embedded broker,
# sidecar and demo will run here as they land).
set -euo pipefail
build_dir=${1:-build/release}
"$build_dir/outrider" version
"$build_dir/outrider" --help
