"""Adapter: the collect rule -> wmrobust.evaluate.collect."""

import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from wmrobust.evaluate import collect

collect(
    Path(snakemake.input.status).parent,
    Path(snakemake.output[0]),
    episode_seeds=snakemake.params.episode_seeds,
    episode_frames=snakemake.params.episode_frames,
    workers=snakemake.threads,
)
