# Replication of "Towards Unraveling and Improving Generalization in World Models"
# (arXiv 2501.00195). Targets: `figures` (the scale's artifacts), `tables`,
# `runs`, and every artifact id by name (e.g. `snakemake --cores 2 table1`).
# Choose the scale with --config scale=smoke|local|paper (config/README.md).


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/artifacts.smk"


# default_target only takes effect in the main Snakefile, so the default lives here.
rule all:
    default_target: True
    input:
        rules.figures.input,
    localrule: True
