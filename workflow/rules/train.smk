# Training. A run's directory ends in its id (the hash of its config minus the
# fields that cannot change results), so a changed config trains a new run beside
# the old one. A run is never lost to a rerun of its job:
# - `run:` rather than `script:`: Snakemake reruns a script job whenever the
#   script's mtime is newer than its outputs (a pull, a checkout, an editor save);
#   for `run:` it compares the block's text, and only if that was edited;
# - `update()`: Snakemake neither deletes nor cleans up the run's files before or
#   after a rerun or retry (it restores them if the job fails; it deletes those it
#   has no earlier version of, never checkpoint/, which is no output), so a rerun
#   of a finished run finds it finished and a retry resumes from checkpoint/.
# A run is never left running either: Ctrl-C or SIGTERM to a local snakemake
# stops every job within seconds, each training run with a checkpoint, and no new
# job starts (wmrobust.stopping); the same command then resumes the runs.


onstart:
    if workflow.local_exec:
        stop_jobs_on_signals(logger.warning)


rule train:
    output:
        model=update(f"results/{{scale}}/runs/{RUN}/{rundir.MODEL}"),
        metrics=update(f"results/{{scale}}/runs/{RUN}/{rundir.METRICS}"),
        metrics_provenance=update(
            f"results/{{scale}}/runs/{RUN}/{rundir.METRICS}.provenance.json"
        ),
        status=update(f"results/{{scale}}/runs/{RUN}/{rundir.STATUS}"),
    log:
        f"results/{{scale}}/logs/train/{RUN}.log",
    benchmark:
        f"results/{{scale}}/benchmarks/train/{RUN}.tsv"
    priority: seed_major
    conda:
        "../../environment.yml"
    threads: train_threads
    resources:
        mem_mb=resource("train", "mem_mb", 4000),
        runtime=resource("train", "runtime", 60),
        gpu=resource("train", "gpu", 0),
    params:
        run=run_identity,
    run:
        train_job(
            grid_run_config(wildcards, params.run),
            Path(output.status).parent,
            Path(log[0]),
        )


# Every training run of the scale.
rule runs:
    input:
        [run_files(run)["status"] for run in EXPERIMENT.runs],
    localrule: True
