"""PNG charts: grouped bars per category (CMMLU, MT-Bench) and a radar per MT-Bench language."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from langadapt_tasks.report.tables import Table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _values(table: Table, columns: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    idx = [table.columns.index(c) for c in columns]
    factor = 100 if table.kinds[idx[0]] == "pct" else 1
    out = {}
    for name, cells in table.rows.items():
        vals = [factor * cells[i].value if cells[i].value is not None else math.nan for i in idx]
        errs = [factor * cells[i].stderr if cells[i].stderr else math.nan for i in idx]
        out[name] = (vals, errs)
    return out


def _panel(ax: Any, table: Table, columns: list[str], ylabel: str, ymax: float | None) -> None:
    """A group of bars per column, one bar per model."""
    data = _values(table, columns)
    width = 0.8 / max(1, len(data))
    for i, (name, (vals, errs)) in enumerate(data.items()):
        xs = [x + (i - (len(data) - 1) / 2) * width for x in range(len(columns))]
        ax.bar(
            xs,
            vals,
            width,
            yerr=errs if any(e == e for e in errs) else None,
            capsize=2,
            label=name,
        )
    ax.set_xticks(range(len(columns)), columns, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    scale = f" (judge scale {table.scale[0]:g}–{table.scale[1]:g})" if table.scale else ""
    ax.set_title(table.title + scale, fontsize=9, loc="left")
    if table.scale or ymax:
        ax.set_ylim(0, ymax or table.scale[1])
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def panels(items: list[tuple[Table, list[str], str]], path: Path) -> Path:
    """One panel per (table, its columns, y label), e.g. every benchmark of one language."""
    plt = _pyplot()
    widest = max(len(columns) for _, columns, _ in items)
    rows = max(len(table.rows) for table, _, _ in items)
    fig, axes = plt.subplots(
        len(items),
        1,
        figsize=(max(8, (0.9 + 0.12 * rows) * widest + 3), 3.6 * len(items)),
        squeeze=False,
    )
    for ax, (table, columns, ylabel) in zip(axes[:, 0], items, strict=True):
        _panel(ax, table, columns, ylabel, None)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def bars(
    tables: list[Table], columns: list[str], ylabel: str, path: Path, ymax: float | None = None
) -> Path:
    """One panel per table, a group of bars per column, one bar per model."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(tables), 1, figsize=(max(8, 1.3 * len(columns) + 3), 3.6 * len(tables)), squeeze=False
    )
    for ax, table in zip(axes[:, 0], tables, strict=True):
        _panel(ax, table, columns, ylabel, ymax)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def radar(table: Table, columns: list[str], path: Path) -> Path:
    """MT-Bench's usual picture: one polygon per model over the categories."""
    plt = _pyplot()
    angles = [2 * math.pi * i / len(columns) for i in range(len(columns))]
    fig, ax = plt.subplots(figsize=(6.5, 6), subplot_kw={"projection": "polar"})
    for name, (vals, _) in _values(table, columns).items():
        shown = [0.0 if math.isnan(v) else v for v in vals]
        ax.plot([*angles, angles[0]], [*shown, shown[0]], marker="o", label=name)
        ax.fill([*angles, angles[0]], [*shown, shown[0]], alpha=0.1)
    ax.set_xticks(angles, columns)
    if table.scale:
        ax.set_ylim(0, table.scale[1])
    title = table.title + (f" (scale {table.scale[0]:g}–{table.scale[1]:g})" if table.scale else "")
    ax.set_title(title, fontsize=10, pad=20)
    ax.tick_params(axis="x", pad=8)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
