# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Open-loop prediction error vs horizon
#
# Builds `rollout_error`: for each task (rows) and error metric (columns:
# observation MSE (pixels or vector), latent distance to the posterior, reward error), the mean over
# seeds with a 95% bootstrap interval against the open-loop horizon, log y.
# The caption adds the transition-Jacobian norms when the `jacobian` table is given.
#
# Snakemake interface (rule with `script:`):
#
# - `input`: `rollout` (aggregated rollout parquet); optional `jacobian`.
# - `params`: `artifact`, `caption`, `variants`, `tasks`, `scale`,
#   `scale_info`, `inferred`; optional `n_resamples`, `bootstrap_seed`.
# - `output`: `png`, `pdf`, `csv`, `caption`, `provenance`.

# %%
from wmrobust.artifacts.figures import plot_rollout_error, rollout_summary
from wmrobust.artifacts.spec import notebook_spec, read_inputs, require, restrict, write_figure
from wmrobust.artifacts.tables import jacobian_note, seeds_note

sm = snakemake  # noqa: F821 - Snakemake's script: directive defines it
spec = notebook_spec(sm)
tables = read_inputs(sm.input)
rollout = require(tables, "rollout", spec.artifact)
summary = rollout_summary(rollout, spec)

# %%
fig = plot_rollout_error(summary, spec)
notes = [
    "Lines: mean error over finished seeds; shaded: 95% bootstrap interval; log scale.",
    seeds_note(rollout, spec),
    jacobian_note(tables.get("jacobian"), spec),
]
print(write_figure(fig, summary, sm.output, spec, sm.input, notes, shown=restrict(rollout, spec)))
