# Evaluation under perturbation, held-out episodes and open-loop rollouts. Each
# result is a file of its run's folder named by the id of what produced it
# (Experiment.stage_ids: conditions, episodes, horizon), so a changed setting
# writes new files beside the finished ones instead of overwriting them.


rule evaluate:
    input:
        model=f"results/{{scale}}/runs/{RUN}/{rundir.MODEL}",
        status=f"results/{{scale}}/runs/{RUN}/{rundir.STATUS}",
    output:
        f"results/{{scale}}/eval/{RUN}/{{sid}}.parquet",
        # Declared so that a failed job leaves no provenance without its table.
        f"results/{{scale}}/eval/{RUN}/{{sid}}.parquet.provenance.json",
    log:
        f"results/{{scale}}/logs/evaluate/{RUN}/{{sid}}.log",
    benchmark:
        f"results/{{scale}}/benchmarks/evaluate/{RUN}/{{sid}}.tsv"
    conda:
        "../../environment.yml"
    threads: resource("evaluate", "threads", 1)
    resources:
        mem_mb=resource("evaluate", "mem_mb", 2000),
        runtime=resource("evaluate", "runtime", 60),
    params:
        stage=current_stage("evaluate"),
        conditions=EXPERIMENT.conditions,
        episode_seeds=episode_seeds("evaluation"),
        episode_frames=EXPERIMENT.stage("evaluation").get("episode_frames"),
    script:
        "../scripts/evaluate.py"


# Held-out episodes of the baseline's final policy, shared by every variant
# (named by the baseline run's id).
rule collect:
    input:
        model=f"results/{{scale}}/runs/{BASELINE_RUN}/{rundir.MODEL}",
        status=f"results/{{scale}}/runs/{BASELINE_RUN}/{rundir.STATUS}",
    output:
        f"results/{{scale}}/heldout/{BASELINE_RUN}/{{sid}}.npz",
    log:
        f"results/{{scale}}/logs/collect/{BASELINE_RUN}/{{sid}}.log",
    benchmark:
        f"results/{{scale}}/benchmarks/collect/{BASELINE_RUN}/{{sid}}.tsv"
    conda:
        "../../environment.yml"
    threads: resource("collect", "threads", 1)
    resources:
        mem_mb=resource("collect", "mem_mb", 2000),
        runtime=resource("collect", "runtime", 60),
    params:
        stage=current_stage("collect"),
        episode_seeds=episode_seeds("heldout"),
        episode_frames=EXPERIMENT.stage("heldout").get("episode_frames"),
    script:
        "../scripts/collect.py"


rule rollout:
    input:
        model=f"results/{{scale}}/runs/{RUN}/{rundir.MODEL}",
        status=f"results/{{scale}}/runs/{RUN}/{rundir.STATUS}",
        heldout=heldout_file,
    output:
        errors=f"results/{{scale}}/rollout/{RUN}/{{sid}}.parquet",
        jacobian=f"results/{{scale}}/rollout/{RUN}/{{sid}}.jacobian.parquet",
        errors_provenance=f"results/{{scale}}/rollout/{RUN}/{{sid}}.parquet.provenance.json",
        jacobian_provenance=f"results/{{scale}}/rollout/{RUN}/{{sid}}.jacobian.parquet.provenance.json",
    log:
        f"results/{{scale}}/logs/rollout/{RUN}/{{sid}}.log",
    benchmark:
        f"results/{{scale}}/benchmarks/rollout/{RUN}/{{sid}}.tsv"
    conda:
        "../../environment.yml"
    threads: resource("rollout", "threads", 1)
    resources:
        mem_mb=resource("rollout", "mem_mb", 2000),
        runtime=resource("rollout", "runtime", 60),
    params:
        stage=current_stage("rollout"),
        context=EXPERIMENT.stage("rollout").get("context", 5),
        horizon=EXPERIMENT.stage("rollout").get("horizon", 50),
    script:
        "../scripts/rollout.py"
