"""The published per-seed returns our curves are drawn beside (data/published_curves.csv, whose
header names its sources): the official DreamerV3 runs from vectors and pixels and DreamerV2's
from pixels, on DeepMind Control tasks."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def published_curves(task: str | None = None, obs: str | None = None, agent: str = "dreamerv3") -> pd.DataFrame:
    """Rows (agent, obs, task, seed, frames, return) of ``agent``, optionally one task and observation kind."""
    with resources.files("wmrobust").joinpath("data/published_curves.csv").open() as f:
        df = pd.read_csv(f, comment="#")
    keep = df["agent"] == agent
    if task is not None:
        keep &= df["task"] == task
    if obs is not None:
        keep &= df["obs"] == obs
    return df[keep].reset_index(drop=True)
