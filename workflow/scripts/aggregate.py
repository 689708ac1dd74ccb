"""Adapter: the aggregate rule -> wmrobust.aggregate.aggregate."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from wmrobust.aggregate import aggregate

aggregate(
    snakemake.wildcards.source,
    list(snakemake.input),
    snakemake.params.runs,
    snakemake.output[0],
    scale=snakemake.params.scale,
)
