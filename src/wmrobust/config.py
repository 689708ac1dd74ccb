"""Run configuration: one dataclass tree per run, built from defaults plus overlays.

Defaults live in the dataclasses. Named overlays (agent presets and sizes) and
the experiment's YAML (variants, scales) are nested dicts applied on top, in
that order. Every unknown key or badly typed value is refused with an error
naming its dotted path, e.g. ``agent.latent_error.sigma2``.

This module imports neither torch nor dm_control, so the workflow can resolve
the whole grid cheaply at DAG-build time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from wmrobust.agent.config import AgentConfig, preset_overlays
from wmrobust.envs.config import EnvConfig
from wmrobust.errors import UserError


class ConfigError(UserError):
    """A configuration value or key is invalid; the message names it."""


@dataclass(frozen=True)
class TrainConfig:
    """How a run collects experience and when it learns, evaluates and saves."""

    frames: int = 500_000
    """Total env frames (agent steps x action repeat) to train for."""
    prefill_frames: int = 5_000
    """Env frames collected with uniform random actions; learning starts after them, but no earlier than the end of the first episode (replay holds finished episodes only)."""
    train_ratio: float = 160.0
    """Replayed steps (batch_size x batch_length) per agent step; sets the update rate (DreamerV2: 16x50 every 5 steps = 160)."""
    pretrain: int = 100
    """Extra updates run once when learning starts, on the prefill data (DreamerV2/V3: 100)."""
    batch_size: int = 16
    """Sequences per replay batch."""
    batch_length: int = 50
    """Steps per replayed sequence."""
    replay_capacity: int = 1_000_000
    """Most agent steps kept in replay (oldest episodes dropped first)."""
    eval_every_frames: int = 10_000
    """Env frames between periodic clean evaluations (0 disables them)."""
    eval_episodes: int = 1
    """Episodes per periodic clean evaluation."""
    log_every_frames: int = 1_000
    """Env frames between rows of training metrics."""
    checkpoint_every_seconds: float = 600.0
    """Wall-clock seconds between resume checkpoints."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Torch device; auto picks cuda when available (status.json records the device used)."""
    precision: Literal["float32", "bfloat16"] = "float32"
    """Compute precision of updates: float32, or bfloat16 autocast (parameters stay float32; fast on GPUs and CPUs with AVX512-BF16/AMX)."""
    threads: int = 0
    """Torch CPU threads (0 keeps torch's default, the machine's cores); part of a run's identity, since the thread count changes the summation order of its arithmetic."""
    compile: bool = False
    """torch.compile (inductor) the RSSM's posterior and imagination steps; falls back to eager with a warning where no compiler works. Part of a run's identity: compiled updates agree with eager only to float tolerance."""

    def __post_init__(self):
        for name in ("frames", "train_ratio", "batch_size", "batch_length", "replay_capacity",
                     "eval_episodes", "log_every_frames"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name}: {getattr(self, name)} must be > 0")
        for name in ("prefill_frames", "pretrain", "eval_every_frames", "checkpoint_every_seconds", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name}: {getattr(self, name)} must be >= 0")
        if self.frames <= self.prefill_frames:
            raise ValueError(f"train.frames: {self.frames} must be more than train.prefill_frames "
                             f"({self.prefill_frames}): learning starts after the prefill, so the run "
                             f"would train nothing")


def seed_problem(seed: int) -> str | None:
    """None for a seed torch and numpy take, else why not."""
    return None if 0 <= seed < 2**64 else f"{seed} must be in [0, 2**64) (the seeds torch and numpy take)"


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run; its hash names its results."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The task and how the agent observes it."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """World model, behaviour, latent error and regularization."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Collection, update rate, evaluation and checkpointing."""
    seed: int = 0
    """Seeds torch, numpy and the training environments."""

    def __post_init__(self):
        # Replay holds finished episodes only and samples batch_length steps within one, an
        # episode being its agent steps plus the first observation (wmrobust.train
        # train_updates, Replay.can_sample): learning starts once such an episode exists.
        if seed_problem(self.seed):
            raise ConfigError(f"seed: {seed_problem(self.seed)}")
        env, train = self.env, self.train
        steps = math.ceil(env.episode_frames / env.action_repeat)
        if math.ceil(train.frames / env.action_repeat) < steps:
            raise ConfigError(f"train.frames: {train.frames} is less than one episode (env.episode_frames "
                              f"{env.episode_frames}): replay takes finished episodes only, so the run "
                              f"would train nothing")
        if train.batch_length > steps + 1:
            raise ConfigError(f"train.batch_length: {train.batch_length} is longer than an episode "
                              f"(env.episode_frames {env.episode_frames} / env.action_repeat "
                              f"{env.action_repeat} = {steps} steps, plus the first observation: "
                              f"{steps + 1}): replay samples within one episode, so the run would "
                              f"train nothing")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def hash(self) -> str:
        return config_hash(self)

    def id_columns(self, variant: str) -> dict[str, Any]:
        """The identifying columns every result row of this run carries."""
        error = self.agent.latent_error
        return {
            "task": self.env.task,
            "variant": variant,
            "seed": self.seed,
            "preset": self.agent.preset,
            "latent_error": error.kind,
            "sigma2": error.sigma2 if error.kind == "zero_drift" else float("nan"),
            "lambda": self.agent.jacobian.weight,
        }


# ---------------------------------------------------------------------------
# Generic machinery: dicts <-> frozen dataclasses, overlays, hashing.


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict (JSON/YAML-serializable) of a config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# Run-config fields that cannot change a run's results: how often it logs and
# checkpoints (logging's random draws come from a fork of the random streams, and a
# resumed run is bitwise the uninterrupted one). They are left out of the run identity,
# so changing them neither retrains a finished run nor blocks resuming one. Threads,
# device and compile stay in: each changes the floating-point arithmetic of training.
NOT_IDENTITY = ("train.checkpoint_every_seconds", "train.log_every_frames")


# Fields added to the config after run ids were first pinned (tests/test_experiment.py), each
# with the value at which it computes what every run before it computed. At that value a field
# stays out of the identity, so adding a field keeps the id of every run trained, evaluated or
# shipped before it. A new field goes here, with its neutral value, or the pinned ids fail.
ADDED_FIELDS = {"agent.gru_blocks": 1}


def identity(cfg: Any) -> dict[str, Any]:
    """The flat ``dotted key -> value`` dict that identifies a run: its config minus NOT_IDENTITY
    and minus the ADDED_FIELDS at their neutral values."""
    return {k: v for k, v in flatten(to_dict(cfg)).items()
            if k not in NOT_IDENTITY and not (k in ADDED_FIELDS and v == ADDED_FIELDS[k])}


def config_hash(cfg: Any) -> str:
    """The run identity: a stable 12-hex-digit hash of ``identity(cfg)``, the same across
    processes; it names the run directory (``seed<k>-<hash>``) and is checked at every use."""
    text = json.dumps(identity(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def identity_diff(a: Any, b: Any) -> list[str]:
    """The identity keys whose values differ between two run configs."""
    x, y = identity(a), identity(b)
    return sorted(k for k in x.keys() | y.keys() if x.get(k) != y.get(k))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as one level of dotted keys (``agent.jacobian.weight``)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        out.update(flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overlay`` into a copy of ``base`` (overlay wins on leaves)."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build(cls: type, data: dict[str, Any] | None, path: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, defaults filling the gaps.

    Raises ConfigError naming the dotted key for unknown keys and for values
    that do not match the field's type.
    """
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown config key {where}{unknown[0]!s}; valid keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        # The dataclasses' own checks name their full key already.
        named = path and str(err).startswith((f"{path}.", f"{path}:"))
        raise ConfigError(str(err) if named else f"{path or 'config'}: {err}") from err


def parse_number(value: Any) -> Any:
    """A string that reads as a number (``'2000'``, ``'0.5'``, ``'1e-3'``) as that int or float;
    anything else unchanged. Snakemake's ``--config`` passes numbers inside nested values as
    strings, so number fields accept them; true/false and text fields stay strict."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return value


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(a) for a in typing.get_args(tp))
            raise ConfigError(f"{path}: {value!r} is not one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, path)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{path}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        item_type = args[0] if args else Any
        return tuple(_coerce(item_type, v, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        value = parse_number(value)  # Snakemake's --config passes nested numbers as strings
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        value = parse_number(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def resolve(overrides: dict[str, Any] | None = None) -> RunConfig:
    """The run config for ``overrides``: defaults, then the agent preset and size
    overlays they name, then the overrides themselves."""
    overrides = overrides or {}
    agent = overrides.get("agent", {}) or {}
    if not isinstance(agent, dict):
        raise ConfigError(f"agent: expected a mapping, got {agent!r}")
    defaults = AgentConfig()
    preset = agent.get("preset", defaults.preset)
    size = agent.get("size", defaults.size)
    layered: dict[str, Any] = {}
    for overlay in preset_overlays(preset, size):
        layered = merge(layered, overlay)
    return build(RunConfig, merge(layered, overrides))


def save_yaml(cfg: Any, path: str | Path) -> None:
    from wmrobust.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """Parsed YAML, or a ConfigError naming the missing or malformed file."""
    path = Path(path)
    try:
        # libyaml's loader when PyYAML has it: the same documents, ~7x faster (every job reads configs).
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except (UnicodeDecodeError, IsADirectoryError) as err:
        raise ConfigError(f"{path}: not a YAML text file ({type(err).__name__})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', None) or err}") from err


def load_yaml(path: str | Path) -> RunConfig:
    data = read_yaml(path)
    try:
        return build(RunConfig, data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstrings written under each field of a config dataclass."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr):
            if isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def reference(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, description) for every leaf of the config tree."""
    rows = []
    docs = field_docs(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            rows += reference(type(value), key + ".")
        else:
            rows.append((key, json.dumps(value), docs.get(f.name, "")))
    return rows


def reference_markdown() -> str:
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | `{default}` | {doc} |" for key, default, doc in reference()]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m wmrobust.config > the table in config/README.md
    print(reference_markdown())
