# Evaluation under perturbation, held-out episodes and open-loop rollouts.


rule evaluate:
    input:
        model=RUN_DIR + "/model.pt",
        status=RUN_DIR + "/status.json",
    output:
        RESULTS + "/eval/{task}/{variant}/seed{seed}.parquet",
    params:
        conditions=EXPERIMENT.conditions,
        episode_seeds=episode_seeds("evaluation"),
        episode_frames=EXPERIMENT.stage("evaluation").get("episode_frames"),
    log:
        RESULTS + "/logs/evaluate/{task}/{variant}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/evaluate/{task}/{variant}/seed{seed}.tsv"
    threads: resource("evaluate", "threads", 1)
    resources:
        mem_mb=resource("evaluate", "mem_mb", 2000),
        runtime=resource("evaluate", "runtime", 60),
    conda:
        "../../environment.yml"
    script:
        "../scripts/evaluate.py"


rule collect:
    """Held-out episodes of the baseline's final policy, shared by every variant."""
    input:
        model=RESULTS + "/runs/{task}/baseline/seed{seed}/model.pt",
        status=RESULTS + "/runs/{task}/baseline/seed{seed}/status.json",
    output:
        RESULTS + "/heldout/{task}/seed{seed}.npz",
    params:
        episode_seeds=episode_seeds("heldout"),
        episode_frames=EXPERIMENT.stage("heldout").get("episode_frames"),
    log:
        RESULTS + "/logs/collect/{task}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/collect/{task}/seed{seed}.tsv"
    threads: resource("collect", "threads", 1)
    resources:
        mem_mb=resource("collect", "mem_mb", 2000),
        runtime=resource("collect", "runtime", 60),
    conda:
        "../../environment.yml"
    script:
        "../scripts/collect.py"


rule rollout:
    input:
        model=RUN_DIR + "/model.pt",
        status=RUN_DIR + "/status.json",
        heldout=RESULTS + "/heldout/{task}/seed{seed}.npz",
    output:
        errors=RESULTS + "/rollout/{task}/{variant}/seed{seed}.parquet",
        jacobian=RESULTS + "/rollout/{task}/{variant}/seed{seed}.jacobian.parquet",
    params:
        context=EXPERIMENT.stage("rollout").get("context", 5),
        horizon=EXPERIMENT.stage("rollout").get("horizon", 50),
    log:
        RESULTS + "/logs/rollout/{task}/{variant}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/rollout/{task}/{variant}/seed{seed}.tsv"
    threads: resource("rollout", "threads", 1)
    resources:
        mem_mb=resource("rollout", "mem_mb", 2000),
        runtime=resource("rollout", "runtime", 60),
    conda:
        "../../environment.yml"
    script:
        "../scripts/rollout.py"
