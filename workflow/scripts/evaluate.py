"""Adapter: the evaluate rule -> wmrobust.evaluate.evaluate."""

import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from wmrobust.evaluate import evaluate
from wmrobust.perturb import parse_condition

evaluate(
    Path(snakemake.input.status).parent,
    Path(snakemake.output[0]),
    variant=snakemake.wildcards.variant,
    conditions=[parse_condition(label) for label in snakemake.params.conditions],
    episode_seeds=snakemake.params.episode_seeds,
    episode_frames=snakemake.params.episode_frames,
    workers=snakemake.threads,
)
