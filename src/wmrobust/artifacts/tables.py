"""Tables of the artifacts and the text beside them: cells, Markdown / LaTeX, table builders,
the claims report, and the notes that captions carry (seeds, divergence, Jacobian norms)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from wmrobust import claims, stats
from wmrobust.artifacts.spec import Spec, frames_label, restrict, short_caption, spec_order

# Columns of the runs table that identify a run rather than configure it.
RUN_ID_COLUMNS = (
    "task", "variant", "seed", "status", "frames", "config_hash", "diverged_at_frames",
    "latent_error", "sigma2", "lambda", "env.task",
)  # fmt: skip
KEY_HYPERPARAMETERS = (
    "agent.preset", "agent.size", "train.frames", "env.action_repeat", "agent.latent_error.kind",
    "agent.latent_error.sigma2", "agent.jacobian.weight", "agent.imag_horizon",
)  # fmt: skip


# ---------------------------------------------------------------- cells


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "–"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}"
    return f"{x:.3g}"


def cell(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return _fmt(mean)
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


# ---------------------------------------------------------------- markdown and LaTeX writers


def _header_labels(df: pd.DataFrame) -> list[str]:
    if isinstance(df.columns, pd.MultiIndex):
        return [" ".join(str(p) for p in col if str(p)) for col in df.columns]
    return [str(c) for c in df.columns]


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a frame of strings (MultiIndex columns joined with spaces)."""
    head = _header_labels(df)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in df.astype(str).itertuples(index=False):
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


_TEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--"}  # fmt: skip


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in str(text))


def tex_markdown(text: str) -> str:
    """LaTeX of a line of Markdown: `code` as \\texttt, **bold** as \\textbf, the rest escaped;
    a lone backtick is dropped."""
    out = []
    for k, part in enumerate(re.split(r"`([^`]*)`", str(text))):
        if k % 2:
            out.append(rf"\texttt{{{tex_escape(part)}}}")
            continue
        for j, piece in enumerate(re.split(r"\*\*(.+?)\*\*", part.replace("`", ""))):
            out.append(rf"\textbf{{{tex_escape(piece)}}}" if j % 2 else tex_escape(piece))
    return "".join(out)


def latex_table(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (two header rows for MultiIndex columns), resized to the text width."""
    ncol = len(df.columns)
    lines = [
        r"\begin{table*}[t]", r"\centering", rf"\caption{{{tex_markdown(caption)}}}", rf"\label{{tab:{label}}}",
        r"\resizebox{\textwidth}{!}{%", rf"\begin{{tabular}}{{{'l' * ncol}}}", r"\toprule",
    ]  # fmt: skip
    if isinstance(df.columns, pd.MultiIndex):
        top, spans = [], []
        cols = list(df.columns)
        i = 0
        while i < ncol:
            j = i
            while j + 1 < ncol and cols[j + 1][0] == cols[i][0] and str(cols[i][1]):
                j += 1
            name = tex_escape(cols[i][0])
            top.append(rf"\multicolumn{{{j - i + 1}}}{{c}}{{{name}}}" if j > i else name)
            if j > i:
                spans.append(rf"\cmidrule(lr){{{i + 1}-{j + 1}}}")
            i = j + 1
        lines.append(" & ".join(top) + r" \\")
        lines += spans
        lines.append(" & ".join(tex_escape(c[1]) for c in cols) + r" \\")
    else:
        lines.append(" & ".join(tex_escape(c) for c in df.columns) + r" \\")
    lines.append(r"\midrule")
    for row in df.astype(str).itertuples(index=False):
        lines.append(" & ".join(tex_markdown(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- robustness (return per family and level)


def robustness_table(summary: pd.DataFrame, spec: Spec, stat: str = "mean") -> pd.DataFrame:
    """Wide table: rows (task,) variant; columns (family, level), clean first; cells 'mean [low, high]'."""
    lo, hi = ("ci_low", "ci_high") if stat == "mean" else ("iqm_low", "iqm_high")
    text = [cell(m, a, b) for m, a, b in zip(summary[stat], summary[lo], summary[hi])]
    column = [("clean", "") if f == "clean" else (f, f"{lv:g}") for f, lv in zip(summary["family"], summary["level"])]
    s = summary.assign(text=text, column=column)
    columns = list(dict.fromkeys(s["column"]))
    wide = s.pivot_table(index=["task", "variant"], columns="column", values="text", aggfunc="first", sort=False)
    wide = wide.reindex(columns=columns)
    seeds = summary.groupby(["task", "variant"], sort=False).agg(n=("n_seeds", "max"), d=("n_diverged", "max"))
    seeds_text = [f"{n}" + (f" (+{d} diverged)" if d else "") for n, d in seeds.loc[wide.index].to_numpy()]
    wide.insert(0, ("seeds", ""), seeds_text)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    wide = wide.reset_index()
    if len(spec.tasks) == 1:
        wide = wide.drop(columns="task", level=0)
    return wide.fillna("–")


def robustness_markdown(summary: pd.DataFrame, spec: Spec) -> tuple[str, str, list[str]]:
    """Markdown and LaTeX of a robustness table: means, plus IQMs where every cell has >= 4 seeds."""
    if summary.empty:
        return "No evaluation rows for these tasks and variants.\n", "% no data\n", []
    mean_wide = robustness_table(summary, spec, "mean")
    md = "Mean episode return [95% bootstrap interval]:\n\n" + markdown_table(mean_wide)
    tex = latex_table(mean_wide, short_caption(spec) + " Mean [95% CI].", spec.artifact)
    notes = []
    if not summary.empty and summary["n_seeds"].min() >= stats.IQM_MIN_SEEDS:
        iqm_wide = robustness_table(summary, spec, "iqm")
        md += "\nInterquartile mean [95% bootstrap interval]:\n\n" + markdown_table(iqm_wide)
        tex += latex_table(iqm_wide, short_caption(spec) + " IQM [95% CI].", spec.artifact + "_iqm")
    else:
        notes.append(f"IQM not shown: some cells have fewer than {stats.IQM_MIN_SEEDS} seeds.")
    return md, tex, notes


# ---------------------------------------------------------------- hyperparameters


def _joined(values: pd.Series) -> str:
    uniq = list(dict.fromkeys(_scalar(v) for v in values))
    return " / ".join(uniq)


def _scalar(v: Any) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):
        return "(" + ", ".join(_scalar(x) for x in v) + ")"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def hyperparameter_table(runs: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """One row per (task, variant): seeds, diverged runs, the key hyperparameters and every one that varies."""
    runs = restrict(runs, spec)
    params = [c for c in runs.columns if c not in RUN_ID_COLUMNS and c != "seed"]
    rows = []
    for (task, variant), g in runs.groupby(["task", "variant"], sort=False):
        row = {"task": task, "variant": variant, "seeds": ", ".join(map(str, sorted(g["seed"].unique())))}
        row["diverged"] = str(int((g["status"] == "diverged").sum())) if "status" in g else "–"
        row.update({p: _joined(g[p]) for p in params})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    varying = [p for p in params if table[p].nunique() > 1]
    shown = [p for p in KEY_HYPERPARAMETERS if p in params] + [p for p in varying if p not in KEY_HYPERPARAMETERS]
    table = spec_order(table, spec)
    return table[["task", "variant", "seeds", "diverged", *shown]]


# ---------------------------------------------------------------- claims report


def smoke_notes(spec: Spec) -> list[str]:
    """The caption's warning at the smoke scale (the caption is in claims.md and the HTML report)."""
    return ["**The smoke scale checks the machinery; its numbers are not evidence** (tiny models, minutes "
            "of training): the local and paper scales test the claims."] if spec.scale == "smoke" else []


def claims_report(table: pd.DataFrame, spec: Spec, left_out: list[str] = ()) -> str:
    """Body of claims.md: the decision rule, then per claim its statement and one line per effect;
    last, the comparisons the scale cannot make (``left_out``, from ``claims.not_in_grid``)."""
    lines = [
        "Decision rule (docs/protocol.md section 1): the effect's 95% percentile bootstrap interval over seeds "
        f"({spec.n_resamples} resamples) entirely on the claimed side of 0 means **supported**, entirely on "
        "the other side **contradicted**, otherwise **inconclusive**; with fewer than "
        f"{spec.min_seeds} non-diverged seeds on a side the effect and interval are shown but the verdict is "
        f"**too few seeds (n < {spec.min_seeds})**. Effects are `a - b` over seeds, paired by seed "
        "when both sides have the same seeds. Diverged runs are excluded from returns, frames and errors and "
        "counted in the divergence rate. `IQM a / b` is each side's interquartile mean over seeds (from "
        f"{stats.IQM_MIN_SEEDS} seeds). `P(claimed)` is the probability of improvement: that a seed of `a` "
        "lies on the claimed side of a seed of `b` (ties count half), with its interval. Rows marked *beside* "
        "are reported for context (other levels); the verdicts of the others decide.",
        "",
    ]
    for claim, statement in claims.STATEMENTS.items():
        rows = table[table["claim"] == claim]
        lines += [f"## {claim}: {statement}", ""]
        verdicts = rows.loc[rows["primary"].astype(bool), "verdict"].value_counts()
        if not verdicts.empty:
            lines += ["Primary effects: " + ", ".join(verdict_count(v, n) for v, n in verdicts.items()) + ".", ""]
        lines.append(markdown_table(claims_display(rows)))
    if left_out:
        lines += ["", f"Not compared: the {spec.scale} scale does not run a variant of "
                  + "; ".join(left_out) + "."]
    return "\n".join(lines)


def verdict_count(verdict: str, n: int) -> str:
    """'2 supported'; '2 without a verdict (too few seeds, n < 5)'."""
    if verdict.startswith("too few seeds"):
        return f"{n} without a verdict ({verdict.replace(' (', ', ').rstrip(')')})"
    return f"{n} {verdict}"


def iqm_pair(a: float, b: float) -> str:
    """'312 / 287' for the two sides' IQMs; a dash where a side has too few seeds for one."""
    return " / ".join(_fmt(x) if np.isfinite(x) else "–" for x in (a, b))


def claims_display(table: pd.DataFrame) -> pd.DataFrame:
    """The claims table as strings for Markdown / LaTeX."""

    def seeds(a, b):
        return "–" if not np.isfinite(a) else f"{int(a)} vs {int(b)}"

    return pd.DataFrame({
        "claim": table["claim"],
        "task": table["task"],
        "statistic": table["statistic"] + np.where(table["primary"].astype(bool), "", " (beside)"),
        "a - b": table["comparison"],
        "claimed": table["claimed_side"] + " 0",
        "effect [95% CI]": [cell(m, a, b) for m, a, b in zip(table["effect"], table["ci_low"], table["ci_high"])],
        "seeds": [seeds(a, b) for a, b in zip(table["n_seeds_a"].astype(float), table["n_seeds_b"].astype(float))],
        "IQM a / b": [iqm_pair(a, b) for a, b in zip(table["iqm_a"].astype(float), table["iqm_b"].astype(float))],
        "P(claimed) [95% CI]": [
            cell(m, a, b) for m, a, b in zip(table["p_claimed"], table["p_claimed_low"], table["p_claimed_high"])
        ],
        "verdict": table["verdict"],
        "note": table["note"].fillna(""),
    })  # fmt: skip


# ---------------------------------------------------------------- caption notes


def seeds_note(table: pd.DataFrame, spec: Spec) -> str:
    """'Seeds per variant: baseline 3, nzd 3 (1 diverged)', per task when there are several."""
    t = restrict(table, spec)
    parts = []
    for task in spec.tasks:
        items = []
        for v in spec.variants:
            rows = t[(t["task"] == task) & (t["variant"] == v)]
            if rows.empty:  # a variant this task does not use is left out
                continue
            n_div = rows.loc[rows["status"] == "diverged", "seed"].nunique() if "status" in rows else 0
            items.append(f"{v} {rows['seed'].nunique()}" + (f" ({n_div} diverged)" if n_div else ""))
        if items:
            parts.append((f"{task}: " if len(spec.tasks) > 1 else "") + ", ".join(items))
    return "Seeds per variant: " + ("; ".join(parts) or "none") + "."


def diverged_note(diverged: pd.DataFrame, spec: Spec) -> str:
    d = diverged[diverged["variant"].isin(spec.variants) & diverged["task"].isin(spec.tasks)]
    if d.empty:
        return "No run diverged."
    runs = ", ".join(
        f"{r.variant} seed {r.seed} at {frames_label(float(r.frames))} frames" for r in d.itertuples()
    )
    return (
        f"Diverged runs (dotted, x at the last logged return before divergence; excluded from the mean): {runs}."
    )


def jacobian_note(jacobian: pd.DataFrame | None, spec: Spec) -> str:
    """Mean transition-Jacobian norms per variant (held-out states), for the rollout caption."""
    if jacobian is None:
        return ""
    j = restrict(jacobian, spec)
    j = j[(j["status"] != "diverged") & np.isfinite(j["value"].astype(float))] if "status" in j else j
    if j.empty:
        return ""
    per = stats.per_seed(j, ["task", "norm", "variant"], "value").groupby(["task", "norm", "variant"], sort=False)
    text = [f"{t} {v} {n} {_fmt(x)}" for (t, n, v), x in per["value"].mean().items()]
    return "Transition Jacobian norms on held-out states (mean over seeds): " + "; ".join(text) + "."
