"""Adapter: the train rule's params and outputs -> wmrobust.train.train."""

import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "a", buffering=1)

import torch

from wmrobust.config import RunConfig, build
from wmrobust.train import train

torch.set_num_threads(snakemake.threads)
cfg = build(RunConfig, snakemake.params.run)
status = train(cfg, Path(snakemake.output.status).parent, progress=False)
print(f"run ended with status {status}")
