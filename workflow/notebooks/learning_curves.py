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
# # Learning curves: eval and train return vs env frames
#
# Builds `fig3`, `fig4`, `fig5`, `quad_nonzero_drift` and `long_horizon`. One
# row of panels per task: eval return (left) and train return (right); lines
# are the mean over finished seeds with a shaded 95% bootstrap interval, and
# diverged runs are drawn dotted up to divergence with an x there. Every
# figure carries a subtitle with the scale, frames, seeds and model, and each
# variant keeps one colour, marker and line style across figures
# (`wmrobust.artifacts.style.VARIANT_STYLES`); variants without rows are left out.
#
# Snakemake interface (rule with `script:`):
#
# - `input`: `curves` (aggregated curves parquet); optional `runs` (run table,
#   for divergence frames).
# - `params`: `artifact` (id), `caption` (registry text), `variants` (list, plot
#   order), `tasks` (list), `scale` (name), `scale_info` (dict: `frames`,
#   `seeds`, `eval_episodes`, `episode_frames`, `size`, `preset`, `render`),
#   `inferred` (bool); optional
#   `n_resamples` (default 2000), `bootstrap_seed` (default 0).
# - `output`: `png`, `pdf`, `csv` (plotted numbers), `caption` (markdown),
#   `provenance` (json).

# %%
from wmrobust.artifacts.figures import curve_summary, diverged_runs, plot_learning_curves
from wmrobust.artifacts.spec import notebook_spec, read_inputs, require, restrict, write_figure
from wmrobust.artifacts.tables import diverged_note, seeds_note

sm = snakemake  # noqa: F821 - Snakemake's script: directive defines it
spec = notebook_spec(sm)
tables = read_inputs(sm.input)
curves = require(tables, "curves", spec.artifact)
diverged = diverged_runs(curves, tables.get("runs"))
summary = curve_summary(curves, spec, diverged)

# %%
fig = plot_learning_curves(summary, curves, diverged, spec)
notes = [
    "Lines: mean episode return over finished seeds; shaded: 95% bootstrap interval.",
    seeds_note(curves, spec),
    diverged_note(diverged, spec),
]
print(write_figure(fig, summary, sm.output, spec, sm.input, notes, shown=restrict(curves, spec)))
