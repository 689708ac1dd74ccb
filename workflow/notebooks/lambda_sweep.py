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
# # Jacobian regularization weight sweep
#
# Builds `lambda_sweep`: final clean return (left) and mean perturbed return
# (right; per seed the mean over the perturbed conditions every variant was
# evaluated on) against lambda, log x. Each variant's lambda comes from the
# `lambda` column; variants with lambda = 0 are drawn as a dashed line with
# their interval as a band.
#
# Snakemake interface (rule with `script:`):
#
# - `input`: `eval` (aggregated evaluation parquet).
# - `params`: `artifact`, `caption`, `variants`, `tasks`, `scale`,
#   `scale_info`, `inferred`; optional `n_resamples`, `bootstrap_seed`.
# - `output`: `png`, `pdf`, `csv`, `caption`, `provenance`.

# %%
from wmrobust.artifacts.figures import lambda_summary, plot_lambda_sweep
from wmrobust.artifacts.spec import notebook_spec, plural, read_inputs, require, restrict, write_figure
from wmrobust.artifacts.tables import seeds_note

sm = snakemake  # noqa: F821 - Snakemake's script: directive defines it
spec = notebook_spec(sm)
tables = read_inputs(sm.input)
ev = require(tables, "eval", spec.artifact)
summary = lambda_summary(ev, spec)

# %%
fig = plot_lambda_sweep(summary, spec)
n_cond = int(summary["n_conditions"].max()) if not summary.empty else 0
notes = [
    "Points: mean over finished seeds; bars: 95% bootstrap interval.",
    f"Perturbed return: per seed, the mean over {plural(n_cond, 'perturbed condition')} shared by all variants.",
    seeds_note(ev, spec),
]
print(write_figure(fig, summary, sm.output, spec, sm.input, notes, shown=restrict(ev, spec)))
