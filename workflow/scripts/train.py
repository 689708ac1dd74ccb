"""Adapter: the train rule's params and outputs -> wmrobust.train.train."""

import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "a", buffering=1)

import torch

from wmrobust.config import identity
from wmrobust.experiment import Experiment
from wmrobust.train import train

w = snakemake.wildcards
# The fields left out of the identity (threads, device, log and checkpoint cadence)
# come from the experiment config, so that changing them never reruns the job.
cfg = Experiment(snakemake.config).run_config(w.task, w.variant, int(w.seed))
if identity(cfg) != snakemake.params.run or cfg.hash() != w.rid:
    raise SystemExit(f"run {w.task}/{w.variant}/seed{w.seed}-{w.rid}: the job's params are not this run's config")
torch.set_num_threads(snakemake.threads)
status = train(cfg, Path(snakemake.output.status).parent, progress=False)
print(f"run ended with status {status}")
