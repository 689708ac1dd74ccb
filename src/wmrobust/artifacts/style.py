"""How figures look: the theme, the colour-blind-safe palette, one style per variant, the
frames axis format, the subtitle and the legend below the panels."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Iterable

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from wmrobust.artifacts.spec import Spec, frames_label, subtitle_text


def set_style() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.35)
    plt.rcParams.update({"legend.frameon": False, "axes.titleweight": "bold"})


# Okabe & Ito's colour-blind-safe qualitative palette (yellow left out: too faint on white).
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}  # fmt: skip


# Line styles and markers of variants beyond the colours; ":" and "x" mean a diverged run.
LINESTYLES = ("-", "--", "-.", (0, (5, 1.5, 1, 1.5, 1, 1.5)))
MARKERS = ("o", "s", "^", "D", "v", "P", "*", "h")


@dataclass(frozen=True)
class Style:
    """How one variant is drawn in every figure."""

    color: str
    marker: str
    linestyle: Any


# Colours a reader takes for one hue at a glance (and on a small legend swatch).
SIMILAR_HUES = ({OKABE_ITO["blue"], OKABE_ITO["sky blue"]}, {OKABE_ITO["orange"], OKABE_ITO["vermillion"]})

# One style per variant of config/config.yaml, the same in every figure. The variants of each
# registry figure have distinct colours (baseline black; zero drift blues and greens,
# non-zero drift warm colours), and any two of them differ in at least two of hue, marker and
# line style (Jacobian-regularized ones are dashed).
VARIANT_STYLES = {
    "baseline": Style(OKABE_ITO["black"], "o", "-"),
    "zd01": Style(OKABE_ITO["bluish green"], "^", "-"),
    "zd1": Style(OKABE_ITO["sky blue"], "v", "-."),
    "zd5": Style(OKABE_ITO["blue"], "D", "-"),
    "zd01_jac": Style(OKABE_ITO["reddish purple"], "h", "--"),
    "zd5_jac": Style(OKABE_ITO["sky blue"], "s", "--"),
    "nzd": Style(OKABE_ITO["vermillion"], "s", "-"),
    "nzd_jac": Style(OKABE_ITO["orange"], "P", "--"),
    "nzd_lam1e-3": Style(OKABE_ITO["reddish purple"], "v", "-."),
    "nzd_lam1e-1": Style(OKABE_ITO["blue"], "^", "-."),
    "nzd_lam1": Style(OKABE_ITO["bluish green"], "D", "-."),
    "aug": Style(OKABE_ITO["sky blue"], "v", LINESTYLES[3]),
    "l2dyn": Style(OKABE_ITO["reddish purple"], "^", LINESTYLES[3]),
    "long": Style(OKABE_ITO["vermillion"], "D", "-."),
    "long_jac": Style(OKABE_ITO["orange"], "*", "--"),
}


def _style_cycle() -> list[Style]:
    """Every (colour, marker, line style), colours varying fastest."""
    colors = list(OKABE_ITO.values())
    return [
        Style(colors[k % len(colors)], MARKERS[k % len(MARKERS)], LINESTYLES[(k // len(colors)) % len(LINESTYLES)])
        for k in range(len(colors) * len(MARKERS) * len(LINESTYLES))
    ]


def variant_styles(variants: Iterable[str]) -> dict[str, Style]:
    """Style of each variant: VARIANT_STYLES for known ones; a variant not listed there gets a
    style chosen from its name (so the same in every figure), moved on to an unused colour (and then
    an unused style) of this figure when that one is taken."""
    variants = list(dict.fromkeys(variants))
    out = {v: VARIANT_STYLES[v] for v in variants if v in VARIANT_STYLES}
    cycle = _style_cycle()
    for v in variants:
        if v in out:
            continue
        start = zlib.crc32(v.encode()) % len(cycle)
        order = cycle[start:] + cycle[:start]
        used_colors = {st.color for st in out.values()}
        used = set(out.values())
        free = [st for st in order if st.color not in used_colors] or [st for st in order if st not in used]
        out[v] = (free or order)[0]
    return {v: out[v] for v in variants}


def palette(variants: list[str]) -> dict[str, str]:
    """Colour of each variant (see variant_styles)."""
    return {v: st.color for v, st in variant_styles(variants).items()}


FRAMES_FORMAT = FuncFormatter(lambda x, _: frames_label(x))


def add_subtitle(fig, spec: Spec):
    """Scale, frames, seeds and model in the figure itself (see subtitle_text), above the panels."""
    return fig.suptitle(subtitle_text(spec), fontsize="medium", color="0.25", fontweight="normal")


def finish_figure(fig, axes, spec: Spec, ncol: int | None = None) -> None:
    add_subtitle(fig, spec)
    _legend_below(fig, axes, ncol)


def _legend_below(fig, axes, ncol: int | None = None) -> None:
    handles, labels = {}, []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if not labels:
        fig.tight_layout()
        return
    labels.sort(key=lambda lab: lab.startswith("diverged run"))  # the marker key goes last
    fig.legend(
        [handles[lab] for lab in labels], labels, loc="lower center", ncol=ncol or min(len(labels), 6),
        bbox_to_anchor=(0.5, -0.01),
    )  # fmt: skip
    legend_inches = 0.25 + 0.3 * math.ceil(len(labels) / (ncol or 6))
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))


def no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def draw_band(ax, style: Style, low, high, x=None) -> None:
    """A variant's interval: a faint fill edged by thin lines in its own colour and line style
    (two translucent fills alone mix into a third colour where they overlap); over ``x``, or
    across the axes without one."""
    edge = dict(color=style.color, ls=style.linestyle, lw=0.7, alpha=0.7)
    if x is None:
        ax.axhspan(low, high, color=style.color, alpha=0.1, lw=0)
        for bound in (low, high):
            ax.axhline(bound, **edge)
    else:
        ax.fill_between(x, low, high, color=style.color, alpha=0.1, lw=0)
        for bound in (low, high):
            ax.plot(x, bound, **edge)


def mark_prefill(ax, spec: Spec) -> None:
    """Shade the random-action prefill at the start of training, where returns are a random policy's."""
    prefill = spec.scale_info.get("prefill_frames")
    if prefill:
        ax.axvspan(0, prefill, color="0.9", lw=0, zorder=0)
        ax.text(prefill / 2, 0.98, "prefill", transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize="small", color="0.4")


def line_kw(style: Style) -> dict[str, Any]:
    """A variant's line: its colour and line style, its marker every tenth of the axes."""
    return dict(color=style.color, ls=style.linestyle, marker=style.marker, ms=5, markevery=0.1)
