"""The experiment grid of config/config.yaml: which runs, evaluations and
artifacts a scale needs, and the resolved run config of each run.

The Snakemake workflow and `wmrobust plan` both read the grid from here, so
the two never disagree. No torch or dm_control import.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from wmrobust.config import ConfigError, RunConfig, merge, read_yaml, resolve, seed_problem
from wmrobust.envs.config import TASK_CAMERAS
from wmrobust.episodes import evaluation_seeds
from wmrobust.perturb import FAMILIES, Condition, Perturbation, SpecError, sweep
from wmrobust.results import RESULT_KINDS
from wmrobust.rundir import run_path
from wmrobust.schema import SCHEMA, check_schema

ADD_A_TASK = ("a task is added with three keys: a task_overrides entry, the task in "
              "scales.<scale>.tasks, and the task in the runs of each artifact that shows it "
              "(config/README.md, 'Adding a task')")


@dataclass(frozen=True, order=True)
class GridRun:
    """One training run of the grid: where it sits (task, variant, seed) and what it is
    (``rid``, the hash of its resolved config: wmrobust.config.config_hash)."""

    task: str
    variant: str
    seed: int
    rid: str

    @property
    def path(self) -> str:
        """Its folder below ``runs/`` and each later stage's folder (rundir.LAYOUT)."""
        return run_path(self.task, self.variant, self.seed, self.rid)


class Experiment:
    """A validated view of the experiment config at one scale."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        scale = config.get("scale")
        if scale not in config.get("scales", {}):
            known = ", ".join(config.get("scales", {}))
            raise ConfigError(f"scale: {scale!r} is not a defined scale ({known})")
        self.scale_name: str = scale
        self.scale: dict[str, Any] = config["scales"][scale]
        # (task, variant, seed) -> its resolved config, and its run: building a DAG asks for
        # the same few runs thousands of times, and resolving and hashing a config is not free.
        self._run_configs: dict[tuple[str, str, int], RunConfig] = {}
        self._runs: dict[tuple[str, str, int], GridRun] = {}
        self._check_references()

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Experiment:
        """The experiment of a config file (and overrides), checked as the workflow checks it:
        numbers coerced and the repository's schema applied (check_schema)."""
        config = merge(read_yaml(path, "experiment config"), overrides)
        if SCHEMA.exists():
            check_schema(config, SCHEMA)
        return cls(config)

    # -- validation ----------------------------------------------------------

    def _check_references(self) -> None:
        cfg = self.config
        variants, tasks = cfg["variant_overrides"], cfg["task_overrides"]
        for key in ("tasks", "variants"):
            known = tasks if key == "tasks" else variants
            for name in list(cfg.get(key) or []) + list(self.scale.get(key) or []):
                if name not in known:
                    how = f"; {ADD_A_TASK}" if key == "tasks" else ""
                    raise ConfigError(f"{key}: unknown {key[:-1]} {name!r} (defined: {', '.join(known)}){how}")
        for name in cfg.get("tasks") or []:
            if name not in self.scale["tasks"]:
                raise ConfigError(f"tasks: {name!r} is not a task of scale {self.scale_name!r} (its tasks: "
                                  f"{', '.join(self.scale['tasks'])}); {ADD_A_TASK}")
        for artifact_id, artifact in cfg["artifacts"].items():
            if artifact["notebook"] not in cfg["notebooks"]:
                raise ConfigError(
                    f"artifacts.{artifact_id}.notebook: unknown notebook {artifact['notebook']!r}"
                )
            for family in artifact.get("families") or []:
                if family not in cfg["perturbations"]:
                    raise ConfigError(f"artifacts.{artifact_id}.families: unknown family {family!r} "
                                      f"(perturbations defines: {', '.join(cfg['perturbations'])})")
            runs = artifact["runs"]
            if runs == "all":
                continue
            for task, task_variants in runs.items():
                if task not in tasks:
                    raise ConfigError(f"artifacts.{artifact_id}.runs: unknown task {task!r}")
                for variant in task_variants:
                    if variant not in variants:
                        raise ConfigError(
                            f"artifacts.{artifact_id}.runs.{task}: unknown variant {variant!r}"
                        )
        artifacts = self.scale["artifacts"]
        if artifacts != "all":
            for artifact_id in artifacts:
                if artifact_id not in cfg["artifacts"]:
                    raise ConfigError(
                        f"scales.{self.scale_name}.artifacts: unknown artifact {artifact_id!r}"
                    )
        shown = {task for a in (cfg["artifacts"] if artifacts == "all" else artifacts)
                 if cfg["artifacts"][a]["runs"] != "all" for task in cfg["artifacts"][a]["runs"]}
        for task in self.scale["tasks"]:
            if task not in shown:
                raise ConfigError(f"scales.{self.scale_name}.tasks: no artifact of the scale has {task!r} "
                                  f"in its runs, so nothing would train it; {ADD_A_TASK}")
        self._check_conditions()
        for family in self.perturbation_levels:
            if family not in cfg["perturbations"]:
                raise ConfigError(
                    f"scales.{self.scale_name}.perturbation_levels: unknown family {family!r}"
                )

    def _check_conditions(self) -> None:
        """Refuse, at DAG build, perturbation families and levels the evaluate job would
        refuse, tasks that are not dm_control suite tasks, and an env.task other than the
        task_overrides entry's name, naming the key."""
        cfg = self.config
        blocks = {"perturbations": cfg["perturbations"]}
        for scale_name, scale in cfg["scales"].items():
            blocks[f"scales.{scale_name}.perturbation_levels"] = (scale or {}).get("perturbation_levels") or {}
        for key, levels in blocks.items():
            if not isinstance(levels, dict):
                raise ConfigError(f"{key}: expected a mapping of family to levels, got {levels!r}")
            for family, values in levels.items():
                if family not in FAMILIES:
                    raise ConfigError(f"{key}: unknown perturbation family {family!r} "
                                      f"(valid: {', '.join(FAMILIES)})")
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"{key}.{family}: expected a non-empty list of levels, got {values!r}")
                for level in values:
                    try:
                        if isinstance(level, bool):
                            raise ValueError
                        number = float(level)
                    except (TypeError, ValueError):
                        raise ConfigError(f"{key}.{family}: level {level!r} is not a number") from None
                    try:
                        Perturbation(family, number)  # what parse_condition checks of each part
                    except SpecError as err:
                        raise ConfigError(f"{key}.{family}: level {level!r}: {err}") from None
        # A run's task is the name of its task_overrides entry (run_overrides sets env.task
        # from it), so that the run's path, its id and what it trains agree.
        for task, overrides in cfg["task_overrides"].items():
            if task not in TASK_CAMERAS:
                raise ConfigError(f"task_overrides.{task}: unknown dm_control task {task!r}; "
                                  f"valid tasks: {', '.join(TASK_CAMERAS)}")
            named = _env_task(overrides)
            if named is not None and named != task:
                raise ConfigError(f"task_overrides.{task}.env.task: {named!r} is not the entry's name "
                                  f"{task!r}; the name is the runs' task (env.task may be left out)")
        others = {f"variant_overrides.{v}": o for v, o in cfg["variant_overrides"].items()}
        others.update({f"scales.{s}.run": (scale or {}).get("run") for s, scale in cfg["scales"].items()})
        for key, overrides in others.items():
            named = _env_task(overrides)
            if named is not None:
                raise ConfigError(f"{key}.env.task: {named!r}: a run's task is the name of its "
                                  f"task_overrides entry, so env.task may be set only there")

    # -- the grid ------------------------------------------------------------

    @cached_property
    def tasks(self) -> list[str]:
        return _subset(self.scale["tasks"], self.config.get("tasks"))

    @cached_property
    def seeds(self) -> list[int]:
        """The scale's seeds, or the `seeds` selection, which may add seeds beyond them;
        refuses a seed listed twice or outside what torch.manual_seed takes."""
        chosen = self.config.get("seeds")
        key = "seeds" if chosen else f"scales.{self.scale_name}.seeds"
        seeds: list[int] = []
        for seed in chosen or self.scale["seeds"]:
            try:
                seed = int(seed)
            except (TypeError, ValueError):
                raise ConfigError(f"{key}: {seed!r} is not an integer") from None
            if seed_problem(seed):
                raise ConfigError(f"{key}: {seed_problem(seed)}")
            if seed in seeds:
                raise ConfigError(f"{key}: seed {seed} is listed twice")
            seeds.append(seed)
        return seeds

    @cached_property
    def variant_filter(self) -> list[str]:
        """Variants this scale may run (every defined one unless restricted)."""
        allowed = self.scale.get("variants") or list(self.config["variant_overrides"])
        return _subset(allowed, self.config.get("variants"))

    @cached_property
    def artifact_ids(self) -> list[str]:
        """The artifacts this scale builds, dropping those with no run left after subsetting."""
        wanted = self.scale["artifacts"]
        ids = list(self.config["artifacts"]) if wanted == "all" else list(wanted)
        return [a for a in ids if self.artifact_runs(a)]

    def artifact(self, artifact_id: str) -> dict[str, Any]:
        try:
            return self.config["artifacts"][artifact_id]
        except KeyError:
            raise ConfigError(f"unknown artifact {artifact_id!r}") from None

    def _declared_runs(self, artifact_id: str) -> list[tuple[str, str]]:
        runs = self.artifact(artifact_id)["runs"]
        if runs == "all":
            return []
        return [
            (task, variant)
            for task, variants in runs.items()
            if task in self.tasks
            for variant in variants
            if variant in self.variant_filter
        ]

    def artifact_runs(self, artifact_id: str) -> list[GridRun]:
        """The runs an artifact reads at this scale (`all`: every run of the scale)."""
        if self.artifact(artifact_id)["runs"] == "all":
            return self.runs
        return [self.run(t, v, s) for t, v in self._declared_runs(artifact_id) for s in self.seeds]

    @cached_property
    def runs(self) -> list[GridRun]:
        """Every run the scale's artifacts need, in a stable order; refuses an empty grid,
        naming the selection that emptied it, and stage settings its runs cannot meet."""
        wanted = self.scale["artifacts"]
        ids = list(self.config["artifacts"]) if wanted == "all" else list(wanted)
        pairs = {pair for a in ids for pair in self._declared_runs(a)}
        if not pairs:
            raise ConfigError(self._empty_grid_reason(ids))
        runs = sorted(self.run(t, v, s) for t, v in pairs for s in self.seeds)
        self._check_stages(ids, pairs, runs)
        return runs

    def _check_stages(self, ids: list[str], pairs: set[tuple[str, str]], runs: list[GridRun]) -> None:
        """Refuse, at DAG build, evaluation conditions and rollout lengths that the evaluate
        and rollout jobs of the grid's runs would refuse, naming the key."""

        def reading(stage: str) -> list[GridRun]:
            needed = {pair for a in ids if stage in self.artifact_stages(a)
                      for pair in (pairs if self.artifact(a)["runs"] == "all" else self._declared_runs(a))}
            return [r for r in runs if (r.task, r.variant) in needed]

        levels = (f"scales.{self.scale_name}.perturbation_levels" if self.scale.get("perturbation_levels")
                  else "perturbations")
        family = next((f for f, d in FAMILIES.items() if d.images_only and f in self.perturbation_levels), None)
        for run in reading("evaluate") if family else []:
            if self.run_config(run.task, run.variant, run.seed).env.obs == "vector":
                raise ConfigError(f"{levels}.{family}: {family} perturbs images only, but run "
                                  f"{run.task}/{run.variant}/seed{run.seed} observes vectors (env.obs: vector)")
        # The defaults are evaluate.smk's.
        rollout = self.stage("rollout")
        context, horizon = int(rollout.get("context", 5)), int(rollout.get("horizon", 50))
        for task, seed in sorted({(r.task, r.seed) for r in reading("rollout")}):
            held = self.heldout_run(task, seed)
            env = self.run_config(held.task, held.variant, held.seed).env
            frames = self.stage("heldout").get("episode_frames")
            key = f"scales.{self.scale_name}.heldout.episode_frames" if frames else "env.episode_frames"
            frames = int(frames or env.episode_frames)
            steps = math.ceil(frames / env.action_repeat)
            if context + horizon > steps + 1:
                raise ConfigError(f"scales.{self.scale_name}.rollout: context {context} + horizon {horizon} "
                                  f"= {context + horizon} steps is longer than the held-out episodes of "
                                  f"{task}: {key} {frames} / env.action_repeat {env.action_repeat} = {steps} "
                                  f"steps, plus the first observation: {steps + 1}")

    def _empty_grid_reason(self, artifact_ids: list[str]) -> str:
        declared = {(t, v) for a in artifact_ids if self.artifact(a)["runs"] != "all"
                    for t, vs in self.artifact(a)["runs"].items() for v in vs}
        used_tasks = sorted({t for t, _ in declared})
        where = f"scale {self.scale_name!r}"
        if self.config.get("tasks"):
            return (f"tasks: {self.config['tasks']} leaves nothing to build at {where} "
                    f"(its tasks: {', '.join(self.scale['tasks'])}; its artifacts use: {', '.join(used_tasks)})")
        if self.config.get("variants"):
            return (f"variants: {self.config['variants']} leaves nothing to build at {where} "
                    f"(its artifacts use: {', '.join(sorted({v for _, v in declared}))})")
        return (f"scales.{self.scale_name}.tasks: {self.scale['tasks']} has no task that the scale's "
                f"artifacts use ({', '.join(used_tasks)})")

    def run(self, task: str, variant: str, seed: int) -> GridRun:
        """The run at (task, variant, seed), identified by the hash of its resolved config."""
        key = (task, variant, int(seed))
        if key not in self._runs:
            self._runs[key] = GridRun(*key, self.run_config(*key).hash())
        return self._runs[key]

    def heldout_run(self, task: str, seed: int) -> GridRun:
        """The run whose held-out episodes the rollouts of ``task`` and ``seed`` read: the
        baseline's final policy records them once for every variant (the collect rule)."""
        return self.run(task, "baseline", seed)

    def artifact_variants(self, artifact_id: str) -> list[str]:
        """Variant names in the artifact's declared order (plot order)."""
        return list(dict.fromkeys(r.variant for r in self.artifact_runs(artifact_id)))

    def artifact_left_out(self, artifact_id: str) -> list[str]:
        """Variants the artifact declares for this scale's tasks that the scale does not run
        (its captions name them, so a figure with fewer lines says why)."""
        runs = self.artifact(artifact_id)["runs"]
        if runs == "all":
            return []
        declared = (v for task, variants in runs.items() if task in self.tasks for v in variants)
        return list(dict.fromkeys(v for v in declared if v not in self.variant_filter))

    def artifact_tasks(self, artifact_id: str) -> list[str]:
        return list(dict.fromkeys(r.task for r in self.artifact_runs(artifact_id)))

    def artifact_sources(self, artifact_id: str) -> list[str]:
        return list(self.config["notebooks"][self.artifact(artifact_id)["notebook"]]["sources"])

    def artifact_stages(self, artifact_id: str) -> set[str]:
        """The rules whose per-run results the artifact reads (train, evaluate, rollout)."""
        return {RESULT_KINDS[source].stage for source in self.artifact_sources(artifact_id)}

    def artifact_output_kind(self, artifact_id: str) -> str:
        return self.artifact(artifact_id)["output"]

    def stage_runs(self, stage: str, artifact_ids: list[str]) -> set[GridRun]:
        """The runs whose results of ``stage`` (a rule: evaluate, rollout) the artifacts read."""
        return {r for a in artifact_ids if stage in self.artifact_stages(a) for r in self.artifact_runs(a)}

    # -- per-run settings ----------------------------------------------------

    def run_overrides(self, task: str, variant: str, seed: int) -> dict[str, Any]:
        """Scale, then task, then variant overrides, then the run's place in the grid: its
        task (the name of the task_overrides entry) and seed."""
        out = merge(self.scale.get("run") or {}, self.config["task_overrides"][task])
        out = merge(out, self.config["variant_overrides"][variant])
        return merge(out, {"env": {"task": task}, "seed": int(seed)})

    def run_config(self, task: str, variant: str, seed: int) -> RunConfig:
        key = (task, variant, int(seed))
        if key not in self._run_configs:
            self._run_configs[key] = self._resolve_run(*key)
        return self._run_configs[key]

    def _resolve_run(self, task: str, variant: str, seed: int) -> RunConfig:
        overrides = self.run_overrides(task, variant, seed)
        try:
            return resolve(overrides)
        except ConfigError as err:
            raise ConfigError(
                f"run {task}/{variant}/seed{seed} (scales.{self.scale_name}.run, "
                f"task_overrides.{task}, variant_overrides.{variant}): {err}"
            ) from err

    # -- where the artifacts go ------------------------------------------------

    def signature(self) -> dict[str, Any]:
        """What the scale's artifacts are built from: the identity of every run, the
        evaluation conditions and stage settings, each artifact's definition (runs,
        families, caption, notebook and its sources) and the claims' seed bar."""
        artifacts = {a: self.config["artifacts"][a] for a in self.artifact_ids}
        return {
            "runs": [r.path for r in self.runs],
            "conditions": self.condition_labels,
            "stages": {name: self.stage(name) for name in ("evaluation", "heldout", "rollout")},
            "artifacts": artifacts,
            "notebooks": {a["notebook"]: self.config["notebooks"][a["notebook"]] for a in artifacts.values()},
            "min_seeds": self.config.get("min_seeds"),
        }

    def selection(self, reference: Experiment | None) -> str | None:
        """None when this grid is ``reference``'s full grid at the same scale (its artifacts
        go to figures/<scale>/); otherwise the name of their own folder,
        figures/<scale>/<name>/: the `selection` key, or custom-<hash of the signature>,
        so subsets and overrides never overwrite the full grid's artifacts."""
        named = self.config.get("selection")
        if named:
            if named in self.config["artifacts"]:
                raise ConfigError(f"selection: {named!r} is an artifact id; choose another folder name")
            return str(named)
        if reference and reference.scale_name == self.scale_name and reference.signature() == self.signature():
            return None
        text = json.dumps(self.signature(), sort_keys=True)
        return "custom-" + hashlib.sha256(text.encode()).hexdigest()[:8]

    # -- evaluation ----------------------------------------------------------

    @cached_property
    def perturbation_levels(self) -> dict[str, list[float]]:
        return self.scale.get("perturbation_levels") or self.config["perturbations"]

    @cached_property
    def conditions(self) -> list[Condition]:
        """The conditions evaluated for every run: clean first, then each family at each level."""
        return sweep(self.perturbation_levels)

    @cached_property
    def condition_labels(self) -> list[str]:
        """The conditions' string form: in the evaluate stage id, the artifacts' signature and
        the evaluate rule's params (Snakemake compares a job's params by their repr)."""
        return [c.label for c in self.conditions]

    def stage(self, name: str) -> dict[str, Any]:
        """A scale's settings block: evaluation, heldout, rollout."""
        return dict(self.scale.get(name) or {})

    @cached_property
    def stage_ids(self) -> dict[str, str]:
        """An 8-hex id of what produces each kind of per-run result beyond the run itself (the
        conditions and episodes of an evaluation; the held-out episodes and horizon of a
        rollout). It names the result's file, so a changed setting writes new files beside
        the old ones and never overwrites a finished run's results."""
        def digest(what: Any) -> str:
            return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]

        def episodes(stage: str) -> dict[str, Any]:
            settings = self.stage(stage)
            return {"episode_seeds": evaluation_seeds(int(settings.get("episodes", 1))),
                    "episode_frames": settings.get("episode_frames")}

        rollout = self.stage("rollout")
        ids = {"evaluate": digest({"conditions": self.condition_labels, **episodes("evaluation")}),
               "collect": digest(episodes("heldout"))}
        ids["rollout"] = digest({"heldout": ids["collect"], "context": rollout.get("context", 5),
                                 "horizon": rollout.get("horizon", 50)})
        return ids

    def result_file(self, kind: str, run: GridRun) -> str:
        """Where a run's result of ``kind`` (eval, heldout, rollout, jacobian: wmrobust.results)
        lies, relative to results/<scale>/ (and cache/<scale>/)."""
        result = RESULT_KINDS[kind]
        return result.path(run.path, self.stage_ids[result.stage])

    def resources(self, rule: str) -> dict[str, Any]:
        """Declared threads/mem/runtime/gpu of a compute rule (rollout and collect share evaluate's)."""
        table = self.scale.get("resources") or {}
        return dict(table.get(rule) or table.get("evaluate") or {})


def _env_task(overrides: Any) -> Any:
    """The env.task an overrides block sets, or None."""
    env = overrides.get("env") if isinstance(overrides, dict) else None
    return env.get("task") if isinstance(env, dict) else None


def _subset(full: list, chosen: list | None) -> list:
    """``full`` restricted to ``chosen`` (kept in ``full``'s order); empty ``chosen`` keeps all."""
    if not chosen:
        return list(full)
    chosen_set = {str(c) for c in chosen}
    return [x for x in full if str(x) in chosen_set]
