"""Adapter: the rollout rule -> wmrobust.rollout.rollout."""

import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

import torch

from wmrobust.rollout import rollout

torch.set_num_threads(snakemake.threads)
rollout(
    Path(snakemake.input.status).parent,
    Path(snakemake.input.heldout),
    Path(snakemake.output.errors),
    Path(snakemake.output.jacobian),
    variant=snakemake.wildcards.variant,
    context=snakemake.params.context,
    horizon=snakemake.params.horizon,
)
