#!/usr/bin/env bash
# One prepared GPU check (at most ~6 minutes on one modern NVIDIA GPU):
#   1. s/update at size S, float32 and bfloat16 autocast, eager and with train.compile
#      (its compile time beside),
#   2. env frames/s of walker_walk with EGL rendering on the GPU, 1 and 8 worker processes,
#   3. a short pixel walker_walk run (20k frames) beside the published pixel curves.
# On a machine without mujoco/dm_control it installs them from bench/gpu_pack/
# (made by bench/gpu_pack.sh; no registry is needed). `--cpu` runs the same steps
# at toy sizes on the CPU: the dry-run path, for machines without a GPU.
#   bash bench/gpu_check.sh [--cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:---gpu}"
start=$(date +%s)
stamp() { echo "== $1 ($(( $(date +%s) - start )) s, load average $(cut -d' ' -f1 /proc/loadavg))"; }

site="$(mktemp -d)"
export PYTHONPATH="$PWD/src:$site${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import mujoco, dm_control, yaml" 2>/dev/null; then
  [ -d bench/gpu_pack ] || { echo "gpu_check: mujoco/dm_control missing and no bench/gpu_pack (run bench/gpu_pack.sh)" >&2; exit 1; }
  python3 -m pip install -q --no-index --no-deps --target "$site" bench/gpu_pack/*.whl
  tar xzf bench/gpu_pack/dm_control-suite.tgz -C "$site"
fi
missing=$(python3 -c "
import importlib.util as u
print(' '.join(m for m in ['torch', 'numpy', 'pandas', 'pyarrow', 'mujoco', 'dm_control', 'yaml'] if u.find_spec(m) is None))")
[ -z "$missing" ] || { echo "gpu_check: missing Python modules: $missing" >&2; exit 1; }
export MUJOCO_GL=egl

stamp "machine"
python3 -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
if [ "$mode" = "--cpu" ]; then
  device=cpu; sizes=tiny; precisions="float32"; procs="1 2"; envs=2; steps=20
  learn=(--size tiny --frames 2000 --batch 4x16 --train-ratio 16 --eval-every 1000 --eval-episodes 1 --set train.prefill_frames=500 --set env.render=fast)
else
  device=cuda; sizes=S; precisions="float32 bfloat16"; procs="1 8"; envs=8; steps=100
  learn=(--size S --frames 20000 --batch 16x64 --train-ratio 64 --imag-starts 0 --eval-every 10000 --eval-episodes 2 --threads 4)
fi

stamp "1. learner s/update ($device)"
python3 bench/learner.py --device "$device" --sizes $sizes --precisions $precisions --modes eager compiled --jacobians none --threads 4 --repeats 3
stamp "2. env frames/s, EGL"
python3 bench/envs.py --tasks walker_walk --conditions clean --envs "$envs" --processes $procs --steps "$steps"
stamp "3. short pixel walker_walk run"
python3 bench/learning.py --obs pixels --device "$device" --seeds 0 --jobs 1 --run-root "$site/learning" "${learn[@]}"
python3 - <<'PY'
import pandas as pd
from wmrobust.published import published_curves
df = pd.concat([published_curves("walker_walk", "pixels", agent) for agent in ("dreamerv2", "dreamerv3")])
df = df[df.frames <= 100_000]
print("published pixel walker_walk, per seed:")
print(df.pivot_table(index="frames", columns="agent", values="return", aggfunc=lambda v: " / ".join(f"{x:.0f}" for x in v)).to_string())
PY
stamp "done"
rm -rf "$site"
