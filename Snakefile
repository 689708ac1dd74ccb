# Replication of "Towards Unraveling and Improving Generalization in World Models"
# (arXiv 2501.00195). Targets: `figures` (the scale's artifacts), `tables`,
# `runs`, and every artifact id by name (e.g. `snakemake --cores 2 table1`).
# Choose the scale with --config scale=smoke|local|paper (config/README.md).


from pathlib import Path

from wmrobust.config import read_yaml

# Snakemake's own message for malformed YAML names no file; this one names it and the line.
read_yaml(Path(workflow.basedir, "config/config.yaml"))


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
