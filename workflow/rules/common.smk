# Helpers shared by the rules: the experiment grid (from the library, so that
# `wmrobust plan` sees the same grid), paths and per-job parameters.

import sys
from pathlib import Path

from snakemake.utils import min_version

from wmrobust import cache, rundir
from wmrobust.config import ConfigError, identity, read_yaml
from wmrobust.envs.config import gl_problem
from wmrobust.episodes import evaluation_seeds
from wmrobust.experiment import Experiment
from wmrobust.schema import check_schema
from wmrobust.results import RESULT_KINDS, sources
from wmrobust.stopping import stop_jobs_on_signals
from wmrobust.train import train_job

min_version("9.0")


def load_experiment():
    """The grid of this invocation, and the full grid of config/config.yaml at its scale
    (None when config.yaml has no such scale)."""
    # --config passes nested numbers as strings; a key or value the schema refuses is
    # named on one line (config/README.md), where Snakemake's validate prints the schema.
    check_schema(config, Path(workflow.basedir, "workflow/schemas/config.schema.yaml"))
    # Every compute job makes envs: a MUJOCO_GL they cannot render with fails here.
    if gl_problem():
        raise ConfigError(gl_problem())
    experiment = Experiment(config)
    # Resolving the grid resolves every run's config, so a bad override fails before
    # any job starts, naming its key.
    experiment.runs
    shipped = Path(workflow.basedir) / "config" / "config.yaml"
    # A scale that only a --configfile defines has no full grid in config.yaml.
    if experiment.scale_name not in read_yaml(shipped)["scales"]:
        return experiment, None
    return experiment, Experiment.from_file(shipped, scale=experiment.scale_name)


try:
    EXPERIMENT, REFERENCE = load_experiment()
except ConfigError as err:
    # One line naming the culprit; Snakemake would add the stack of this file.
    sys.exit(f"config error: {err}")

# Each scale keeps its own results/<scale>/ and figures/<scale>/, so switching
# scale never overwrites (or silently reuses) another scale's runs. A grid other
# than the full one config/config.yaml defines (subsets, overrides) builds its
# artifacts in a folder of its own: figures/<scale>/<selection>/.
RESULTS = f"results/{EXPERIMENT.scale_name}"
SELECTION = EXPERIMENT.selection(REFERENCE)


def selection_dir(root, *parts):
    """``root/parts``, or ``root/<selection>/parts`` for a grid other than the full one."""
    return str(Path(root, *([SELECTION] if SELECTION else []), *parts))


# Shipped results (src/wmrobust/cache.py): a per-run result that results/<scale>/
# lacks is read from cache/<scale>/, so a fresh clone builds the scale's artifacts
# without training; the user's own result, once it exists, always wins.
CACHE = f"cache/{EXPERIMENT.scale_name}"
FIGURES = selection_dir(f"figures/{EXPERIMENT.scale_name}")
AGGREGATE = selection_dir(f"{RESULTS}/aggregate")
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
    rid="[0-9a-f]{12}",
    sid="[0-9a-f]{8}",
    source="|".join(sources()),
    artifact="|".join(config["artifacts"]) or "^$",


# A run's folder below runs/ and below each later stage's folder, as wildcards.
RUN = rundir.run_path("{task}", "{variant}", "{seed}", "{rid}")
# Held-out episodes are the baseline's, shared by every variant of its task and seed.
BASELINE_RUN = rundir.run_path("{task}", "baseline", "{seed}", "{rid}")


def seed_major(wildcards):
    """Training runs of lower seeds first (seed 0 of every variant, then seed 1...), so
    that a grid stopped part-way is balanced across variants; within a seed, runs that
    stopped part-way resume before new ones start, the furthest first."""
    run_dir = Path(f"results/{wildcards.scale}/runs") / rundir.run_path(
        wildcards.task, wildcards.variant, wildcards.seed, wildcards.rid
    )
    frames = rundir.state(run_dir)["frames"] or 0
    total = EXPERIMENT.run_config(
        wildcards.task, wildcards.variant, int(wildcards.seed)
    ).train.frames
    return -int(wildcards.seed) + 0.5 * min(frames / total, 1)


# Evaluations, held-out episodes and rollouts before any further training: a finished
# run's results are complete, and can be exported, as soon as possible.
AFTER_TRAINING = 1


def result_pattern(kind, run=RUN):
    """A rule's output path of a per-run result, as Experiment.result_file spells it."""
    return f"results/{{scale}}/{RESULT_KINDS[kind].path(run, '{sid}')}"


def run_files(run):
    return {
        name: f"{RESULTS}/runs/{run.path}/{file}"
        for name, file in (
            ("model", rundir.MODEL),
            ("metrics", rundir.METRICS),
            ("status", rundir.STATUS),
        )
    }


def grid_run(wildcards):
    """The run of the grid at a job's task/variant/seed; refuses a path whose id is not its."""
    run = EXPERIMENT.run(wildcards.task, wildcards.variant, int(wildcards.seed))
    if run.rid != wildcards.rid:
        raise ValueError(
            f"run {rundir.run_path(run.task, run.variant, run.seed, wildcards.rid)}: "
            f"the config gives this run the id {run.rid}; ask for a target of the current grid"
        )
    return run


def run_identity(wildcards):
    """A train job's hyperparameters: its run's identity (config minus NOT_IDENTITY)."""
    run = grid_run(wildcards)
    return identity(EXPERIMENT.run_config(run.task, run.variant, run.seed))


def grid_run_config(wildcards, run_identity):
    """A train job's full run config (the fields left out of the identity, such as threads
    and log cadence, come from the scale's config, so that changing them never reruns the
    job); refuses a job whose params are not this run's identity."""
    run = grid_run(wildcards)
    cfg = EXPERIMENT.run_config(run.task, run.variant, run.seed)
    if identity(cfg) != run_identity:
        raise ValueError(f"run {run.path}: the job's params are not this run's config")
    return cfg


def train_threads(wildcards):
    """A train job's cores: its run's train.threads (part of the run's identity, since the
    thread count changes its arithmetic), else the scale's resources.train.threads."""
    cfg = EXPERIMENT.run_config(wildcards.task, wildcards.variant, int(wildcards.seed))
    return cfg.train.threads or resource("train", "threads", 1)


def heldout_file(wildcards):
    """Held-out episodes a rollout job reads: the user's, else the shipped ones, so a
    clone adds a variant without training a shipped baseline again."""
    run = EXPERIMENT.heldout_run(wildcards.task, int(wildcards.seed))
    return result(EXPERIMENT.result_file("heldout", run))


def current_stage(rule_name):
    """A params function: the job's stage id, refusing a file of another setting than the
    current config's (an old result is never overwritten by another setting's)."""

    def check(wildcards):
        sid = EXPERIMENT.stage_ids[rule_name]
        if wildcards.sid != sid:
            raise ValueError(
                f"{rule_name} {wildcards.task}/seed{wildcards.seed}-{wildcards.rid}/{wildcards.sid}: "
                f"the config's {rule_name} settings have the id {sid}; ask for a target of the current grid"
            )
        return sid

    return check


def episode_seeds(stage):
    return evaluation_seeds(int(EXPERIMENT.stage(stage).get("episodes", 1)))


def resource(rule_name, key, default):
    return EXPERIMENT.resources(rule_name).get(key, default)


def result(relative):
    """A per-run result file: the user's in results/<scale>/, else the shipped one."""
    return cache.result_path(RESULTS, CACHE, relative, config["use_cache"])


def source_files(artifact, source):
    """Per-run result files an aggregated table of `artifact` is built from."""
    runs = EXPERIMENT.artifact_runs(artifact)
    if RESULT_KINDS[source].file:
        return [result(EXPERIMENT.result_file(source, r)) for r in runs]
    # A run's status and metrics come from one place: where its status.json is.
    return [
        str(Path(result(f"runs/{r.path}/{rundir.STATUS}")).with_name(name))
        for r in runs
        for name in (rundir.STATUS, rundir.METRICS)
    ]


def aggregate_runs(wildcards):
    return [
        {"task": r.task, "variant": r.variant, "seed": r.seed, "rid": r.rid}
        for r in EXPERIMENT.artifact_runs(wildcards.artifact)
    ]


def artifact_inputs(wildcards):
    return {
        source: f"{AGGREGATE}/{wildcards.artifact}/{source}.parquet"
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

    def stage_episodes(stage):
        # Env frames per episode: the scale's stage setting, else the run's.
        settings = EXPERIMENT.stage(stage)
        return {
            "episodes": int(settings.get("episodes", 1)),
            "frames": int(settings.get("episode_frames") or cfg.env.episode_frames),
        }

    return {
        "frames": cfg.train.frames,
        "prefill_frames": cfg.train.prefill_frames,
        "seeds": EXPERIMENT.seeds,
        # The episodes behind each aggregated source (captions state their own).
        "episodes": {
            "eval": stage_episodes("evaluation"),
            "curves": {
                "episodes": cfg.train.eval_episodes,
                "frames": cfg.env.episode_frames,
                "every": cfg.train.eval_every_frames,
            },
            "rollout": stage_episodes("heldout"),
        },
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
            "left_out": lambda: EXPERIMENT.artifact_left_out(wildcards.artifact),
            "tasks": lambda: EXPERIMENT.artifact_tasks(wildcards.artifact),
            "sources": lambda: EXPERIMENT.artifact_sources(wildcards.artifact),
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
