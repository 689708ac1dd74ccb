# One tidy table per artifact and source, holding only the rows it needs.


rule aggregate:
    input:
        lambda w: source_files(w.artifact, w.source),
    output:
        "results/{scale}/aggregate/{artifact}/{source}.parquet",
    log:
        "results/{scale}/logs/aggregate/{artifact}/{source}.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        runs=aggregate_runs,
        scale=EXPERIMENT.scale_name,
    script:
        "../scripts/aggregate.py"
