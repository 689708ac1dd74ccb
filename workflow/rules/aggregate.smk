# One tidy table per artifact and source, holding only the rows it needs.


rule aggregate:
    input:
        lambda w: source_files(w.artifact, w.source),
    output:
        RESULTS + "/aggregate/{artifact}/{source}.parquet",
    params:
        runs=aggregate_runs,
        scale=EXPERIMENT.scale_name,
    log:
        RESULTS + "/logs/aggregate/{artifact}/{source}.log",
    localrule: True
    conda:
        "../../environment.yml"
    script:
        "../scripts/aggregate.py"
