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
# # Resolved hyperparameters of every variant
#
# Builds `hyperparameters`: one row per task and variant from the `runs`
# table (the resolved run configs, flattened); columns: seeds, diverged runs,
# the key hyperparameters (preset, size, frames, action repeat, latent error,
# Jacobian weight, imagination horizon) and every other one that differs
# between rows. A value that differs between seeds of one row is shown as `a / b`.
#
# Snakemake interface (rule with `script:`):
#
# - `input`: `runs` (aggregated run table parquet).
# - `params`: `artifact`, `caption`, `variants`, `tasks`, `scale`,
#   `scale_info`, `inferred`.
# - `output`: `csv`, `md`, `tex`, `caption`, `provenance`.

# %%
from wmrobust.artifacts.spec import notebook_spec, read_inputs, require, short_caption, write_table
from wmrobust.artifacts.tables import hyperparameter_table, latex_table, markdown_table, seeds_note

sm = snakemake  # noqa: F821 - Snakemake's script: directive defines it
spec = notebook_spec(sm)
tables = read_inputs(sm.input)
runs = require(tables, "runs", spec.artifact)
table = hyperparameter_table(runs, spec)

# %%
md = markdown_table(table)
tex = latex_table(table, short_caption(spec), spec.artifact)
print(write_table(table, md, tex, sm.output, spec, sm.input, [seeds_note(runs, spec)], interval=False))
