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
# # Learning: our evaluation return against the published DreamerV3 curves
#
# Builds `learning`, the first check before believing any robustness number:
# did the agents learn their task? One row of panels per task, one column per
# variant: each seed's evaluation return vs env frames (thin, dotted where the
# run diverged) and the IQM over finished seeds (thick), beside the published
# DreamerV3 seeds from the same observations (grey) and their IQM (grey
# dashed). The caption says how the two agents differ.
#
# Snakemake interface (rule with `script:`):
#
# - `input`: `curves` (aggregated curves parquet), `runs` (run table: the
#   runs' observations and hyperparameters).
# - `params`: `artifact`, `caption`, `variants`, `tasks`, `scale`,
#   `scale_info`, `inferred` (see learning_curves.py).
# - `output`: `png`, `pdf`, `csv` (plotted numbers), `caption` (markdown),
#   `provenance` (json).

# %%
from wmrobust.artifacts.figures import learning_notes, learning_summary, plot_learning
from wmrobust.artifacts.spec import notebook_spec, read_inputs, require, write_figure
from wmrobust.artifacts.tables import seeds_note

sm = snakemake  # noqa: F821 - Snakemake's script: directive defines it
spec = notebook_spec(sm)
tables = read_inputs(sm.input)
curves, runs = require(tables, "curves", spec.artifact), require(tables, "runs", spec.artifact)
summary = learning_summary(curves, runs, spec)

# %%
fig = plot_learning(summary, spec)
notes = [seeds_note(curves, spec), *learning_notes(runs, summary, spec)]
shown = summary[summary["source"] == "ours"]
print(write_figure(fig, summary, sm.output, spec, sm.input, notes, shown=shown, interval=False))
