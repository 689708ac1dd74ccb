"""The kinds of per-run result: which job writes each and where it lies.

The kinds artifacts read are the sources (config: ``notebooks.<name>.sources``), each
aggregated per artifact into ``aggregate/<artifact>/<source>.parquet``; the config
schema lists them too, and a test holds it to `sources()`. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResultKind:
    name: str
    stage: str
    """The rule whose job writes it: train, evaluate, collect or rollout."""
    file: str | None
    """Its path under results/<scale>/ ({run}: the run's path, {sid}: the id of its stage's
    settings, Experiment.stage_ids); None: read from the run directory (status.json,
    metrics.parquet)."""
    source: bool = True
    """Artifacts read it."""

    def path(self, run: str, sid: str) -> str:
        return self.file.format(run=run, sid=sid)


RESULT_KINDS: dict[str, ResultKind] = {k.name: k for k in (
    ResultKind("curves", "train", None),  # the training log's returns
    ResultKind("eval", "evaluate", "eval/{run}/{sid}.parquet"),
    ResultKind("rollout", "rollout", "rollout/{run}/{sid}.parquet"),
    ResultKind("jacobian", "rollout", "rollout/{run}/{sid}.jacobian.parquet"),
    ResultKind("runs", "train", None),  # one row per run: its status and config
    ResultKind("heldout", "collect", "heldout/{run}/{sid}.npz", source=False),  # rollout's input
)}


def sources() -> list[str]:
    """The kinds artifacts read."""
    return [name for name, kind in RESULT_KINDS.items() if kind.source]
