"""The report's tables: CMMLU in both views, MT-Bench per language, deltas to a baseline."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

from langadapt_tasks.cmmlu_subjects import CATEGORIES, SUBJECTS
from langadapt_tasks.judge.rubrics import SCALES
from langadapt_tasks.mtbench_data import CATEGORIES as MT_CATEGORIES
from langadapt_tasks.report.inputs import Model
from langadapt_tasks.scoring import leaderboard_view, lm_eval_view
from langadapt_tasks.yaml_gen import cmmlu_task_name

CMMLU_COLUMNS = [*CATEGORIES.values(), "Average"]
MT_COLUMNS = [*MT_CATEGORIES, "mean", "unscored", "fidelity %"]
_MT_GROUP = re.compile(rf"^(mtbench_langadapt_.+?)_({'|'.join(MT_CATEGORIES)})$")


@dataclass
class Cell:
    value: float | None
    stderr: float | None = None
    note: str = ""


@dataclass
class Table:
    """Models (rows) by columns; ``kinds`` says how each column is shown and compared."""

    key: str
    title: str
    columns: list[str]
    kinds: list[str]  # "pct" (a share, shown x100), "score", "count"
    rows: dict[str, list[Cell]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    scale: tuple[float, float] | None = None


def _num(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not math.isnan(value):
        return float(value)
    return None


def _sem(values: list[float]) -> float | None:
    """Standard error of a mean (None below two values)."""
    return stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None


def _leaderboard_stderr(model: Model, category: str | None) -> float | None:
    """Stderr of an unweighted mean of independent subject accuracies."""
    errs = []
    for subject in SUBJECTS.values():
        if category is not None and category not in subject.official_categories:
            continue
        row = model.tasks.get(cmmlu_task_name(subject.name))
        if row is None:
            continue
        se = _num(row.get("acc_stderr,none"))
        if se is None:
            return None
        errs.append(se)
    return math.sqrt(sum(e * e for e in errs)) / len(errs) if errs else None


def cmmlu_tables(models: dict[str, Model], metric: str = "acc") -> list[Table]:
    groups = Table(
        "cmmlu_lm_eval",
        f"CMMLU ({metric}, %): lm-eval groups — size-weighted, disjoint categories",
        CMMLU_COLUMNS,
        ["pct"] * len(CMMLU_COLUMNS),
    )
    board = Table(
        "cmmlu_leaderboard",
        f"CMMLU ({metric}, %): leaderboard — unweighted subject means, "
        "China-specific subjects also in their discipline",
        CMMLU_COLUMNS,
        ["pct"] * len(CMMLU_COLUMNS),
    )
    keys = [*CATEGORIES, "average"]
    limited: list[str] = []
    for name, model in models.items():
        results = {"results": model.tasks}
        g, b = lm_eval_view(results, metric), leaderboard_view(results, metric)
        if not g and not b:
            continue
        groups.rows[name] = [
            Cell(g[k]["score"], _num(g[k]["stderr"])) if k in g else Cell(None) for k in keys
        ]
        board.rows[name] = [
            Cell(
                b[k]["score"],
                _leaderboard_stderr(model, None if k == "average" else k)
                if metric == "acc"
                else None,
                "" if b[k]["subjects"] == b[k]["of"] else f"{b[k]['subjects']}/{b[k]['of']}",
            )
            if k in b
            else Cell(None)
            for k in keys
        ]
        n = {model.n_samples.get(cmmlu_task_name(s)) for s in SUBJECTS}
        n.discard(None)
        if n and max(n) < 100:
            limited.append(f"{name} ({max(n)})")
    if limited:
        groups.notes.append(
            "At most this many questions per subject (--limit): "
            f"{', '.join(limited)}; scores for a smoke test, not for comparison."
        )
    board.notes.append(
        "Leaderboard stderr: sqrt(sum of subject stderr²) / subjects; "
        "a/b: subjects present of the category's subjects."
    )
    return [t for t in (groups, board) if t.rows]


def mc_table(models: dict[str, Model], metric: str = "acc") -> Table | None:
    """A language's own multiple-choice tasks (``mc_langadapt_<code>``): model x task."""
    tasks = sorted({t for m in models.values() for t in m.tasks if t.startswith("mc_langadapt_")})
    if not tasks:
        return None
    table = Table(
        "multiple_choice",
        f"Multiple choice ({metric}, %): the languages' own knowledge tasks",
        [t.removeprefix("mc_langadapt_") for t in tasks],
        ["pct"] * len(tasks),
    )
    for name, model in models.items():
        rows = [model.tasks.get(t) or {} for t in tasks]
        if any(rows):
            table.rows[name] = [
                Cell(_num(r.get(f"{metric},none")), _num(r.get(f"{metric}_stderr,none")))
                for r in rows
            ]
    return table


def mtbench_groups(models: dict[str, Model]) -> list[str]:
    found: list[str] = []
    for model in models.values():
        for task in model.tasks:
            m = _MT_GROUP.match(task)
            if m and m.group(1) not in found:
                found.append(m.group(1))
    return sorted(found)


def read_verdicts(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def verdict_file(model: Model, group: str) -> tuple[Path | None, int]:
    """The newest verdict file of ``group`` beside the run that gave its results."""
    runs = {model.sources[t].path: model.sources[t] for t in model.tasks if t.startswith(group)}
    pattern = re.compile(rf"^judge_{re.escape(group)}_\d{{4}}-")
    files = sorted(
        (p for run in runs.values() for p in run.verdict_files() if pattern.match(p.name)),
        key=lambda p: p.name[len(group) + 7 :],
    )
    return (files[-1], len(files) - 1) if files else (None, 0)


def _lang(group: str) -> tuple[str, int]:
    rest = group.removeprefix("mtbench_langadapt_")
    return (rest[:-3], 2) if rest.endswith("_mt") else (rest, 1)


def mtbench_table(models: dict[str, Model], group: str) -> Table:
    lang, turn = _lang(group)
    table = Table(
        f"mtbench_{lang}" + ("_turn2" if turn == 2 else ""),
        f"MT-Bench, language {lang}" + (", turn 2" if turn == 2 else ""),
        MT_COLUMNS,
        ["score"] * (len(MT_CATEGORIES) + 1) + ["count", "pct"],
    )
    scales: dict[str, tuple[float, float]] = {}
    for name, model in models.items():
        rows = {c: model.tasks.get(f"{group}_{c}") for c in MT_CATEGORIES}
        if not any(rows.values()):
            continue
        fid = [_num((rows[c] or {}).get("lang_fidelity,none")) for c in MT_CATEGORIES]
        sizes = [model.n_samples.get(f"{group}_{c}", 1) for c in MT_CATEGORIES]
        path, older = verdict_file(model, group)
        if path is not None:
            try:
                verdicts = read_verdicts(path)
            except (OSError, ValueError) as err:
                table.notes.append(f"{name}: verdict file {path} unreadable ({err}); ignored")
                verdicts = []
        else:
            verdicts = []
        if verdicts:
            judge = verdicts[0].get("judge") or {}
            rubric = judge.get("rubric", "paper")
            scales[name] = SCALES.get(rubric, SCALES["paper"])
            source = f"{path.name} (judge {judge.get('model', '?')}, rubric {rubric})"
            if older:
                source += f"; {older} older verdict file(s) ignored"
            per_cat = {c: [r for r in verdicts if r.get("category") == c] for c in MT_CATEGORIES}
            scores = []
            for c in MT_CATEGORIES:
                got = [r["score"] for r in per_cat[c] if r.get("score") is not None]
                missed = len(per_cat[c]) - len(got)
                scores.append(
                    Cell(
                        fmean(got) if got else None,
                        _sem(got),
                        f"{missed} unscored" if missed else "",
                    )
                )
            all_scores = [r["score"] for r in verdicts if r.get("score") is not None]
            mean = Cell(fmean(all_scores) if all_scores else None, _sem(all_scores))
            unscored = sum(1 for r in verdicts if r.get("score") is None)
            n = len(verdicts)
        else:
            cat_scores = [_num((rows[c] or {}).get("judge_score,none")) for c in MT_CATEGORIES]
            judged = any("judge_score,none" in (r or {}) for r in rows.values())
            scores = [Cell(s) for s in cat_scores]
            pairs = [(s, w) for s, w in zip(cat_scores, sizes, strict=True) if s is not None]
            mean = Cell(sum(s * w for s, w in pairs) / sum(w for _, w in pairs) if pairs else None)
            unscored = int(
                sum(_num((r or {}).get("judge_unscored,none")) or 0 for r in rows.values())
            )
            n = sum(w for r, w in zip(rows.values(), sizes, strict=True) if r)
            if judged:
                scales[name] = SCALES["paper"]
                source = "lm-eval results (no verdict file beside them; scale assumed 1–5)"
            else:
                source = "not judged (judge off): fidelity only"
        pairs = [(f, w) for f, w in zip(fid, sizes, strict=True) if f is not None]
        fidelity = sum(f * w for f, w in pairs) / sum(w for _, w in pairs) if pairs else None
        judged_any = bool(verdicts) or name in scales
        unscored_cell = Cell(float(unscored), note=f"of {n}") if judged_any else Cell(None)
        table.rows[name] = [*scores, mean, unscored_cell, Cell(fidelity)]
        table.notes.append(f"{name}: {source}")
    distinct = set(scales.values())
    if len(distinct) == 1:
        table.scale = distinct.pop()
    elif len(distinct) > 1:
        table.notes.insert(
            0,
            "WARNING: the models were judged on different scales "
            f"({', '.join(f'{k}: {lo:g}–{hi:g}' for k, (lo, hi) in scales.items())}); "
            "their scores are not comparable. Re-judge with one rubric (`langadapt judge`).",
        )
    return table


def delta_table(table: Table, baseline: str) -> Table | None:
    """Each other model minus ``baseline`` (score and share columns; stderr combined)."""
    if baseline not in table.rows or len(table.rows) < 2:
        return None
    keep = [i for i, k in enumerate(table.kinds) if k != "count"]
    out = Table(
        f"{table.key}_delta",
        f"Δ vs {baseline}: {table.title}",
        [table.columns[i] for i in keep],
        [table.kinds[i] for i in keep],
        scale=table.scale,
    )
    base = table.rows[baseline]
    for name, cells in table.rows.items():
        if name == baseline:
            continue
        row = []
        for i in keep:
            a, b = cells[i], base[i]
            if a.value is None or b.value is None:
                row.append(Cell(None))
                continue
            se = (
                math.sqrt(a.stderr**2 + b.stderr**2)
                if a.stderr is not None and b.stderr is not None
                else None
            )
            row.append(Cell(a.value - b.value, se))
        out.rows[name] = row
    return out
