#!/usr/bin/env bash
# Builds bench/gpu_pack/ (git-ignored): what bench/gpu_check.sh needs on a GPU machine
# that reaches no package registry and receives at most 64 MiB with the repository.
# The machine has torch; this packs mujoco and its small dependencies as wheels for
# that machine's Python, and dm_control (pure Python) trimmed to the control suite
# (its 83 MB locomotion assets and the dog assets are left out: the walker and
# quadruped tasks do not use them).
#   bash bench/gpu_pack.sh [PYTHON_VERSION]      # e.g. 3.12; default: this python's
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}"
out=bench/gpu_pack
rm -rf "$out" && mkdir -p "$out"
python3 -m pip download -q --only-binary=:all: --no-deps --python-version "$py" \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  -d "$out" mujoco==3.17.0 lxml dm-tree dm-env absl-py pyopengl glfw pyparsing pyyaml etils
tmp="$(mktemp -d)"
python3 -m pip download -q --no-deps -d "$tmp" dm_control==1.0.50
python3 -m pip install -q --no-deps --target "$tmp/site" "$tmp"/dm_control-*.whl
rm -rf "$tmp/site/dm_control/locomotion" "$tmp/site/dm_control/suite/dog_assets" \
  "$tmp/site/dm_control/blender" "$tmp/site/dm_control/suite/all_domains.png"
tar czf "$out/dm_control-suite.tgz" -C "$tmp/site" dm_control dm_control-1.0.50.dist-info
rm -rf "$tmp"
du -sh "$out"
echo "carry it with the run: bench/gpu_pack (the repository and the pack must stay under 64 MiB)"
