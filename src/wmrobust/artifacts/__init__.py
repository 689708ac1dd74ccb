"""Figures, tables, captions and provenance of the artifacts, from aggregated tables.

Each artifact notebook (workflow/notebooks/*.py) calls three kinds of functions:
``*_summary`` turns an aggregated table into the tidy numbers to show (mean and
95% bootstrap interval over seeds, see ``wmrobust.stats``), ``plot_*`` /
``*_table`` draws or lays them out, and ``write_figure`` / ``write_table``
writes the files a Snakemake rule declares, with the caption and the merged
provenance of the inputs.

- ``spec``: the Spec of a rule, its inputs, provenance, captions and the writers;
- ``tables``: cells, Markdown / LaTeX, the table builders, the claims report, caption notes;
- ``style``: theme, palette and variant styles, subtitle and legend of every figure;
- ``figures``: the summaries and the plots.

Imports go one way: ``spec`` <- ``tables``, ``spec`` <- ``style`` <- ``figures``.
"""

import matplotlib

# Before any module of the package imports pyplot: figures are written to files, never shown.
matplotlib.use("Agg")
