# Training. The rule declares only a run's final files: Snakemake deletes
# declared outputs before a retry, and the resume state in checkpoint/ must
# survive it (ARCHITECTURE: preemption-safe training).


rule train:
    output:
        model=RUN_DIR + "/model.pt",
        metrics=RUN_DIR + "/metrics.parquet",
        status=RUN_DIR + "/status.json",
    params:
        run=run_config,
    log:
        RESULTS + "/logs/train/{task}/{variant}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/train/{task}/{variant}/seed{seed}.tsv"
    threads: resource("train", "threads", 1)
    resources:
        mem_mb=resource("train", "mem_mb", 4000),
        runtime=resource("train", "runtime", 60),
        gpu=resource("train", "gpu", 0),
    conda:
        "../../environment.yml"
    script:
        "../scripts/train.py"


rule runs:
    """Every training run of the scale."""
    input:
        [run_files(run)["status"] for run in EXPERIMENT.runs],
    localrule: True
