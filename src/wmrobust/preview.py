"""`wmrobust preview`: one picture of every perturbation family at every docs/protocol.md section 5 level.

Rows are families, columns the clean frame and the levels. Every cell shows the frame
after the same fixed action sequence from the same seed. Observation rows perturb
that clean frame exactly as the env wrapper does; dynamics rows run the sequence
under the scaled physics, so their frames show where the body ends up instead.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from wmrobust.perturb import CLEAN, FAMILIES, Condition, Perturbation, SpecError


def rows() -> list[str]:
    """The families an env picture can show (observation and dynamics) that have default levels."""
    return [name for name, f in FAMILIES.items() if f.levels and f.kind != "latent"]


def fixed_actions(steps: int, act_dim: int) -> np.ndarray:
    """A smooth, deterministic action sequence that keeps the body moving."""
    t = np.arange(steps)[:, None]
    return np.sin(0.25 * t + np.arange(act_dim)[None, :]).astype(np.float32)


def final_states(cfg, seed: int, conditions: list[Condition], steps: int) -> dict[Condition, np.ndarray]:
    """{condition: physics state after `steps` fixed actions}; vector obs, so no rendering."""
    from wmrobust.envs import make_env

    states = {}
    for condition in conditions:
        env = make_env(dataclasses.replace(cfg, obs="vector", episode_frames=10**9), seed, condition)
        env.reset()
        for action in fixed_actions(steps, env.act_dim):
            env.step(action)
        states[condition] = env.physics.get_state()
        env.close()
    return states


def preview_grid(cfg, seed: int, steps: int) -> dict[tuple[str, float | None], np.ndarray]:
    """{(family, level): frame} for every row family and level, plus (family, None) for clean."""
    from wmrobust.envs import make_env
    from wmrobust.envs.dmc import PERTURBATION_STREAM
    from wmrobust.perturb.observation import perturb_observation

    dynamics = [Condition((Perturbation(f, x),)) for f in rows() if FAMILIES[f].kind == "dynamics"
                for x in FAMILIES[f].levels]
    states = final_states(cfg, seed, [CLEAN, *dynamics], steps)
    # One renderer draws every state: dynamics scales change no geometry or colour.
    camera = make_env(dataclasses.replace(cfg, obs="pixels"), seed)
    frames = {}
    for condition, state in states.items():
        camera.physics.set_state(state)
        camera.physics.forward()
        frames[condition] = camera.render()
    camera.close()
    clean = frames[CLEAN]
    grid = {}
    for family in rows():
        grid[family, None] = clean
        for level in FAMILIES[family].levels:
            perturbation = Perturbation(family, level)
            if perturbation.kind == "observation":
                rng = np.random.default_rng([seed, PERTURBATION_STREAM])
                grid[family, level] = perturb_observation({"image": clean}, (perturbation,), rng)["image"]
            else:
                grid[family, level] = frames[Condition((perturbation,))]
    return grid


def draw(frames, task: str, steps: int, action_repeat: int, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = rows()
    columns = 1 + max(len(FAMILIES[f].levels) for f in families)
    fig, axes = plt.subplots(len(families), columns, figsize=(1.7 * columns + 0.6, 1.8 * len(families) + 0.9))
    for r, family in enumerate(families):
        levels = (None, *FAMILIES[family].levels)
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            if c >= len(levels):
                ax.axis("off")
                continue
            ax.imshow(frames[family, levels[c]], interpolation="nearest")
            ax.set_title("clean" if levels[c] is None else f"{family}={levels[c]:g}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{family}\n({FAMILIES[family].kind})", fontsize=10)
    note = (f"{task}: frame after {steps} agent steps ({steps * action_repeat} env frames) of a fixed action "
            "sequence.")
    for f in FAMILIES.values():
        if f.kind == "latent" and f.levels:
            note += (f" {f.name} ({f.meaning} {', '.join(f'{x:g}' for x in f.levels)}) perturbs the world "
                     "model's latent state, not the env: not shown.")
    fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=8, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out, dpi=120)
    plt.close(fig)


def check_out(out: Path) -> None:
    """Refuse, before rendering, an output whose folder is missing or whose extension matplotlib cannot write."""
    from matplotlib.backend_bases import FigureCanvasBase

    if not out.parent.is_dir():
        raise SpecError(f"--out {out}: no such folder {out.parent}")
    formats = FigureCanvasBase.get_supported_filetypes()
    if out.suffix.lstrip(".").lower() not in formats:
        raise SpecError(f"--out {out}: cannot write {out.suffix or 'a file without extension'}; "
                         f"use one of {', '.join('.' + f for f in sorted(formats))}")


def cli(command: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"wmrobust {command}",
        description="One picture of every perturbation family at every level (docs/protocol.md section 5): "
                    "rows are families, columns the clean frame and the levels, each after the same fixed "
                    "action sequence from the same seed.")
    parser.add_argument("--task", default="walker_walk", help="dm_control task, e.g. walker_walk")
    parser.add_argument("--out", default="perturbations.png", help="PNG file to write")
    parser.add_argument("--render", choices=("standard", "fast"), default="standard",
                        help="stock rendering (what the paper's agent sees) or fast (no shadows/reflections)")
    parser.add_argument("--seed", type=int, default=0, help="env seed of the episode shown (default 0)")
    parser.add_argument("--image-size", type=int, default=64, help="rendered side in pixels (the agent's 64)")
    parser.add_argument("--steps", type=int, default=100, help="agent steps of the fixed action sequence")
    args = parser.parse_args(argv)

    from wmrobust.envs import EnvConfig

    check_out(Path(args.out))
    try:  # the env's own checks (task, image size) raise ValueError
        cfg = EnvConfig(task=args.task, image_size=args.image_size, render=args.render)
        if not 0 <= args.steps < 1000 // cfg.action_repeat:  # within the suite's 1000-frame episode
            raise SpecError(f"--steps {args.steps} must be in [0, {1000 // cfg.action_repeat})")
        frames = preview_grid(cfg, args.seed, args.steps)
    except ValueError as err:
        raise SpecError(str(err)) from None
    draw(frames, args.task, args.steps, cfg.action_repeat, args.out)
    print(f"wrote {args.out}")
    return 0
