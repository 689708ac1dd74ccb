"""The `wmrobust` command. Each subcommand lives in its own module, which owns its
arguments (``cli(argv)``); modules load only when their subcommand runs, so
`wmrobust status` never pays for importing torch."""

from __future__ import annotations

import importlib
import sys

from wmrobust.errors import UserError

COMMANDS = {
    "train": ("wmrobust.train", "train one run into a run directory (resumable)"),
    "evaluate": ("wmrobust.evaluate", "evaluate a trained run under perturbation conditions"),
    "collect": ("wmrobust.evaluate", "collect held-out episodes with a run's final policy"),
    "rollout": ("wmrobust.rollout", "open-loop prediction error and Jacobian norms on held-out episodes"),
    "preview": ("wmrobust.preview", "picture of every perturbation family at every level"),
    "plan": ("wmrobust.plan", "job counts, compute and disk estimates of a scale, before launching"),
    "status": ("wmrobust.plan", "list runs as running, finished, diverged or resumable"),
    "cache": ("wmrobust.cache", "copy a scale's finished results into the shipped cache/<scale>/"),
}

# Commands that make dm_control envs, so need a rendering backend.
RENDERS = ("train", "evaluate", "collect", "rollout", "preview")


def usage() -> str:
    lines = ["usage: wmrobust <command> [options]   (wmrobust <command> --help)", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"wmrobust: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if name in RENDERS:
        from wmrobust.envs.config import gl_problem

        if gl_problem():
            print(f"wmrobust {name}: {gl_problem()}", file=sys.stderr)
            return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.cli(name, rest) or 0)
    except UserError as err:  # YAML and torch messages span several lines
        print(f"wmrobust {name}: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
