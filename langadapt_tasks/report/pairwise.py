"""The report's pairwise table: each model's win rate against the models it was compared with
(``langadapt judge --rubric fastchat-pair --against``; the study: the baseline and the
instruct model), per language and turn, from the pair verdicts beside its answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.mtbench import CATEGORIES, read_jsonl
from langadapt_tasks.judge.pairwise import BOOTSTRAP_SEED, PAIR_GLOB, RESAMPLES, summarize_pairs
from langadapt_tasks.judge.verdicts import model_identity
from langadapt_tasks.report.inputs import Model
from langadapt_tasks.report.tables import Cell, Table

KEY = "pairwise"


def _short(group: str) -> str:
    """``mtbench_langadapt_zh_mt`` -> ``zh turn 2``."""
    rest = group.removeprefix("mtbench_langadapt_")
    return f"{rest[:-3]} turn 2" if rest.endswith("_mt") else f"{rest} turn 1"


def _rows(model: Model) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(model's judge name, against) -> its latest pair row per question and turn."""
    latest: dict[tuple, dict[str, Any]] = {}
    folders = dict.fromkeys(run.path.parent for run in model.runs)
    for folder in folders:
        for path in sorted(Path(folder).glob(PAIR_GLOB)):
            for _, row in read_jsonl(path):
                key = (row.get("model"), row.get("against"), row.get("lang"), row.get("turn"))
                latest[(*key, row.get("question_id"))] = row
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key, row in latest.items():
        out.setdefault((str(key[0]), str(key[1])), []).append(row)
    return out


def pairwise_tables(models: dict[str, Model]) -> list[Table]:
    """The pairwise table and its categories (none without pair verdicts)."""
    found = _found(models)
    if not found:
        return []
    return [pairwise_table(found), category_table(found)]


def _found(models: dict[str, Model]) -> dict[str, dict[str, Any]]:
    """ "<model> vs <other>" -> the pair verdicts' summary (``summarize_pairs``)."""
    labels = {
        model_identity(run.path.parent).name: name
        for name, model in models.items()
        for run in model.runs
    }
    found: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        for (_, against), rows in _rows(model).items():
            found[f"{name} vs {labels.get(against, against)}"] = summarize_pairs(rows)
    return found


def _win_cell(s: dict[str, Any] | None) -> Cell:
    """The win rate, its interval as the note."""
    if s is None:
        return Cell(None)
    low_high = s["interval"]
    note = "" if low_high is None else f"{100 * low_high[0]:.1f}–{100 * low_high[1]:.1f}"
    return Cell(s["win_rate"], note=note)


def category_table(found: dict[str, dict[str, Any]]) -> Table:
    """Per comparison and language/turn: the win rate in each MT-Bench category."""
    table = Table(
        f"{KEY}_categories",
        "Pairwise by category: win rate (%) and its 95% bootstrap interval",
        list(CATEGORIES),
        ["pct"] * len(CATEGORIES),
    )
    for row_name, summary in found.items():
        for group in sorted(g for g in summary if "/" not in g):
            cells = [_win_cell(summary.get(f"{group}/{c}")) for c in CATEGORIES]
            table.rows[f"{row_name} ({_short(group)})"] = cells
    return table


def pairwise_table(found: dict[str, dict[str, Any]]) -> Table:
    """Rows "<model> vs <other>", per language and turn: the win rate (its 95 % bootstrap
    interval as the note), wins/ties/losses and the share of pairs whose orders agree."""
    groups = sorted({g for summary in found.values() for g in summary if "/" not in g})
    columns, kinds = [], []
    for group in groups:
        short = _short(group)
        columns += [f"{short} win %", f"{short} W/T/L", f"{short} consistent %"]
        kinds += ["pct", "count", "pct"]
    table = Table(
        KEY,
        "Pairwise (both orders, FastChat's pairwise prompts): win rate against each model "
        "compared with",
        columns,
        kinds,
    )
    for row_name, summary in found.items():
        cells: list[Cell] = []
        for group in groups:
            s = summary.get(group)
            if s is None:
                cells += [Cell(None), Cell(None), Cell(None)]
                continue
            wtl = f"{s['win']}/{s['tie']}/{s['loss']}" + (
                f" ({s['unscored']} unscored)" if s["unscored"] else ""
            )
            cells += [_win_cell(s), Cell(None, text=wtl), Cell(s["consistency"])]
        table.rows[row_name] = cells
    table.notes.append(
        "Win rate = (wins + ties/2) / scored pairs; a pair is a win or a loss only when both "
        "orders (the model's answer shown first, then second) agree, else a tie; in parentheses "
        f"the 95% bootstrap interval over questions ({RESAMPLES} resamples, seed "
        f"{BOOTSTRAP_SEED}); consistent: the share of pairs whose two orders agree."
    )
    return table
