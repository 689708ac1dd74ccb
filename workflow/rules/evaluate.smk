# Evaluation under perturbation, held-out episodes and open-loop rollouts. Each
# result is a file of its run's folder named by the id of what produced it
# (Experiment.stage_ids: conditions, episodes, horizon), so a changed setting
# writes new files beside the finished ones instead of overwriting them.


rule evaluate:
    input:
        model=f"results/{{scale}}/runs/{RUN}/{rundir.MODEL}",
        status=f"results/{{scale}}/runs/{RUN}/{rundir.STATUS}",
    output:
        result_pattern("eval"),
        # Declared so that a failed job leaves no provenance without its table.
        result_pattern("eval") + ".provenance.json",
    log:
        f"results/{{scale}}/logs/evaluate/{RUN}/{{sid}}.log",
    benchmark:
        f"results/{{scale}}/benchmarks/evaluate/{RUN}/{{sid}}.tsv"
    priority: AFTER_TRAINING
    conda:
        "../../environment.yml"
    threads: resource("evaluate", "threads", 1)
    resources:
        mem_mb=resource("evaluate", "mem_mb", 2000),
        runtime=resource("evaluate", "runtime", 60),
    params:
        stage=current_stage("evaluate"),
        conditions=EXPERIMENT.condition_labels,
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
        result_pattern("heldout", BASELINE_RUN),
    log:
        f"results/{{scale}}/logs/collect/{BASELINE_RUN}/{{sid}}.log",
    benchmark:
        f"results/{{scale}}/benchmarks/collect/{BASELINE_RUN}/{{sid}}.tsv"
    priority: AFTER_TRAINING
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
        errors=result_pattern("rollout"),
        jacobian=result_pattern("jacobian"),
        errors_provenance=result_pattern("rollout") + ".provenance.json",
        jacobian_provenance=result_pattern("jacobian") + ".provenance.json",
    log:
        f"results/{{scale}}/logs/rollout/{RUN}/{{sid}}.log",
    benchmark:
        f"results/{{scale}}/benchmarks/rollout/{RUN}/{{sid}}.tsv"
    priority: AFTER_TRAINING
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
