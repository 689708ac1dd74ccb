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
# # Robustness: episode return per perturbation family and level
#
# Builds the figure `fig1` (return vs level, one panel per family, the clean
# return drawn at the family's identity level) and the tables `table1`,
# `robustness_walker`, `robustness_quadruped`, `baselines` and `dynamics`
# (rows: variant, per task; columns: family and level, clean first; cells:
# mean [95% bootstrap interval] over seeds; IQM too when every cell has >= 4
# seeds). Which of the two is written follows the declared outputs: `png`
# means a figure.
#
# Snakemake interface (rule with `script:`):
#
# - `input`: `eval` (aggregated evaluation parquet).
# - `params`: `artifact`, `caption`, `variants`, `tasks`, `scale`,
#   `scale_info`, `inferred` (as in learning_curves.py); optional `families`
#   (families to show, in order; default all), `n_resamples`, `bootstrap_seed`.
# - `output`, figure: `png`, `pdf`, `csv`, `caption`, `provenance`;
#   table: `csv` (tidy numbers), `md`, `tex`, `caption`, `provenance`.

# %%
from wmrobust.artifacts.figures import plot_robustness, robustness_summary
from wmrobust.artifacts.spec import notebook_spec, read_inputs, require, restrict, write_figure, write_table
from wmrobust.artifacts.tables import robustness_markdown, seeds_note

sm = snakemake  # noqa: F821 - Snakemake's script: directive defines it
spec = notebook_spec(sm)
tables = read_inputs(sm.input)
ev = require(tables, "eval", spec.artifact)
summary = robustness_summary(ev, spec)
shown = restrict(ev, spec)  # the caption names the variants with rows
notes = [seeds_note(ev, spec)]

# %%
if hasattr(sm.output, "png"):
    fig = plot_robustness(summary, spec)
    notes.append("Points: mean episode return; bars: 95% bootstrap interval. Clean return drawn at no perturbation.")
    print(write_figure(fig, summary, sm.output, spec, sm.input, notes, shown=shown))
else:
    md, tex, iqm_notes = robustness_markdown(summary, spec)
    print(write_table(summary, md, tex, sm.output, spec, sm.input, notes + iqm_notes, shown=shown))
