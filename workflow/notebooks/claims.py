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
# # Claims C1-C4
#
# Builds `claims`: every effect of docs/protocol.md section 1 per task, with its 95%
# bootstrap interval over seeds, seeds per side, the probability that a seed
# lies on the claimed side, each side's IQM over seeds, and the verdict of the
# decision rule (supported / contradicted / inconclusive / too few seeds); comparisons whose variants or tables are
# missing get a "not run" row saying what is missing, and those of variants the scale
# does not run are named below the tables.
#
# Snakemake interface (rule with `script:`):
#
# - `input`: any of `eval`, `curves`, `rollout`, `runs` (aggregated parquet);
#   those absent make their claims "not run".
# - `params`: `artifact`, `caption`, `variants`, `tasks`, `scale`,
#   `scale_info`, `inferred`, `min_seeds` (the seed bar of the decision rule);
#   optional `n_resamples`, `bootstrap_seed`.
# - `output`: `md` (the report claims.md), `csv` (tidy claims table), `tex`,
#   `caption`, `provenance`.

# %%
from wmrobust import claims
from wmrobust.artifacts.spec import notebook_spec, read_inputs, short_caption, write_table
from wmrobust.artifacts.tables import claims_display, claims_report, latex_table, smoke_notes

sm = snakemake  # noqa: F821 - Snakemake's script: directive defines it
spec = notebook_spec(sm)
tables = read_inputs(sm.input)
table = claims.compute_claims(
    eval=tables.get("eval"), curves=tables.get("curves"), rollout=tables.get("rollout"),
    runs=tables.get("runs"), tasks=spec.tasks, scale=spec.scale,
    n_resamples=spec.n_resamples, seed=spec.bootstrap_seed, min_seeds=spec.min_seeds,
)  # fmt: skip

# %%
report = claims_report(table, spec, claims.not_in_grid(spec.tasks, tables.get("runs")))
tex = latex_table(claims_display(table), short_caption(spec), spec.artifact)
print(write_table(table, report, tex, sm.output, spec, sm.input, notes=smoke_notes(spec),
                  title=f"Claims report ({spec.scale} scale)"))
