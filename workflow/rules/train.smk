# Training. A run's directory ends in its id (the hash of its config minus the
# fields that cannot change results), so a changed config trains a new run beside
# the old one. The rule declares only a run's final files: Snakemake deletes
# declared outputs before a retry, and the resume state in checkpoint/ must
# survive it (docs/architecture.md: run directories).


rule train:
    output:
        model="results/{scale}/runs/{task}/{variant}/seed{seed}-{rid}/model.pt",
        metrics="results/{scale}/runs/{task}/{variant}/seed{seed}-{rid}/metrics.parquet",
        metrics_provenance="results/{scale}/runs/{task}/{variant}/seed{seed}-{rid}/metrics.parquet.provenance.json",
        status="results/{scale}/runs/{task}/{variant}/seed{seed}-{rid}/status.json",
    log:
        "results/{scale}/logs/train/{task}/{variant}/seed{seed}-{rid}.log",
    benchmark:
        "results/{scale}/benchmarks/train/{task}/{variant}/seed{seed}-{rid}.tsv"
    conda:
        "../../environment.yml"
    threads: resource("train", "threads", 1)
    resources:
        mem_mb=resource("train", "mem_mb", 4000),
        runtime=resource("train", "runtime", 60),
        gpu=resource("train", "gpu", 0),
    params:
        run=run_identity,
    script:
        "../scripts/train.py"


# Every training run of the scale.
rule runs:
    input:
        [run_files(run)["status"] for run in EXPERIMENT.runs],
    localrule: True
