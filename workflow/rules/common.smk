# Helpers shared by the rules: the experiment grid (from the library, so that
# `wmrobust plan` sees the same grid), paths and per-job parameters.

from snakemake.utils import min_version, validate

from wmrobust.config import to_dict
from wmrobust.experiment import SOURCES, Experiment

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")
EXPERIMENT = Experiment(config)
# Resolve every run now, so a bad override fails before any job starts, naming its key.
for _run in EXPERIMENT.runs:
    EXPERIMENT.run_config(_run.task, _run.variant, _run.seed)

# Each scale keeps its own results/<scale>/ and figures/<scale>/, so switching
# scale never overwrites (or silently reuses) another scale's runs.
RESULTS = f"results/{EXPERIMENT.scale_name}"
FIGURES = f"figures/{EXPERIMENT.scale_name}"
ARTIFACT_FILES = {
    "figure": ("png", "pdf", "csv"),
    "table": ("csv", "md", "tex"),
    "report": ("md", "csv", "tex"),
}


wildcard_constraints:
    scale=EXPERIMENT.scale_name,
    task="[a-z]+_[a-z_]+",
    variant="[A-Za-z0-9_.+-]+",
    seed=r"\d+",
    source="|".join(SOURCES),
    artifact="|".join(config["artifacts"]) or "^$",


def run_files(run):
    return {
        name: f"{RESULTS}/runs/{run.path}/{name}.{ext}"
        for name, ext in (("model", "pt"), ("metrics", "parquet"), ("status", "json"))
    }


def run_config(wildcards):
    """The resolved run config of a train job, as a plain dict (its hash names the run)."""
    cfg = EXPERIMENT.run_config(wildcards.task, wildcards.variant, int(wildcards.seed))
    return to_dict(cfg)


def episode_seeds(stage):
    return EXPERIMENT.evaluation_seeds(int(EXPERIMENT.stage(stage).get("episodes", 1)))


def resource(rule_name, key, default):
    return EXPERIMENT.resources(rule_name).get(key, default)


def source_files(artifact, source):
    """Per-run result files an aggregated table of `artifact` is built from."""
    runs = EXPERIMENT.artifact_runs(artifact)
    if source == "eval":
        return [f"{RESULTS}/eval/{r.path}.parquet" for r in runs]
    if source == "rollout":
        return [f"{RESULTS}/rollout/{r.path}.parquet" for r in runs]
    if source == "jacobian":
        return [f"{RESULTS}/rollout/{r.path}.jacobian.parquet" for r in runs]
    return [
        f"{RESULTS}/runs/{r.path}/{name}"
        for r in runs
        for name in ("status.json", "metrics.parquet")
    ]


def aggregate_runs(wildcards):
    return [
        {"task": r.task, "variant": r.variant, "seed": r.seed}
        for r in EXPERIMENT.artifact_runs(wildcards.artifact)
    ]


def artifact_inputs(wildcards):
    return {
        source: f"{RESULTS}/aggregate/{wildcards.artifact}/{source}.parquet"
        for source in EXPERIMENT.artifact_sources(wildcards.artifact)
    }


def artifact_outputs(artifact):
    kind = EXPERIMENT.artifact_output_kind(artifact)
    files = [f"{FIGURES}/{artifact}.{ext}" for ext in ARTIFACT_FILES[kind]]
    return files + [
        f"{FIGURES}/{artifact}.caption.md",
        f"{FIGURES}/{artifact}.provenance.json",
    ]


def scale_info():
    """What every caption states about the scale the artifacts come from."""
    first = EXPERIMENT.runs[0]
    cfg = EXPERIMENT.run_config(first.task, first.variant, first.seed)
    return {
        "frames": cfg.train.frames,
        "seeds": EXPERIMENT.seeds,
        "eval_episodes": int(EXPERIMENT.stage("evaluation").get("episodes", 1)),
        "size": cfg.agent.size,
        "preset": cfg.agent.preset,
        "render": cfg.env.render,
    }


def artifact_param(key):
    """A params function giving one field of the artifact's notebook parameters."""

    def get(wildcards):
        artifact = EXPERIMENT.artifact(wildcards.artifact)
        return {
            "artifact": lambda: wildcards.artifact,
            "caption": lambda: artifact["caption"],
            "variants": lambda: EXPERIMENT.artifact_variants(wildcards.artifact),
            "tasks": lambda: EXPERIMENT.artifact_tasks(wildcards.artifact),
            "families": lambda: artifact.get("families")
            or list(EXPERIMENT.perturbation_levels),
            "inferred": lambda: bool(artifact["inferred"]),
            "notebook": lambda: artifact["notebook"],
        }[key]()

    return get


def scale_artifact_outputs(artifact):
    """Outputs of an artifact the current scale builds; a clear error otherwise."""
    if artifact not in EXPERIMENT.artifact_ids:
        raise ValueError(
            f"artifact {artifact!r} is not built at scale {EXPERIMENT.scale_name!r} "
            f"(scales.{EXPERIMENT.scale_name}.artifacts, or no run of it is left after the "
            f"tasks/variants/seeds subsets); builds: {', '.join(EXPERIMENT.artifact_ids)}"
        )
    return artifact_outputs(artifact)


def artifacts_of_kind(kind):
    return [
        a for a in config["artifacts"] if EXPERIMENT.artifact_output_kind(a) == kind
    ]
