# One tidy table per artifact and source, holding only the rows it needs.


rule aggregate:
    input:
        lambda w: source_files(w.artifact, w.source),
    output:
        f"{AGGREGATE}/{{artifact}}/{{source}}.parquet",
        f"{AGGREGATE}/{{artifact}}/{{source}}.parquet.provenance.json",
    log:
        selection_dir(f"{RESULTS}/logs/aggregate", "{artifact}", "{source}.log"),
    localrule: True
    conda:
        "../../environment.yml"
    params:
        runs=aggregate_runs,
        scale=EXPERIMENT.scale_name,
    script:
        "../scripts/aggregate.py"
