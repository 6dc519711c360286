"""CMMLU scores in two views, from an lm-eval results file.

* ``lm_eval``: what ``lm_eval`` prints. Five disjoint groups (China-specific
  subjects only in ``china_specific``), each the size-weighted mean of its
  questions; the overall score is weighted the same way.
* ``leaderboard``: how the CMMLU paper and leaderboard score. A category is
  the unweighted mean of its subjects' accuracies, a China-specific subject
  also counts in its discipline category, and the average is the unweighted
  mean over all 67 subjects.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean
from typing import Any

from langadapt_tasks.cmmlu.subjects import CATEGORIES, CMMLU_GROUP, SUBJECTS, cmmlu_task_name

Score = dict[str, Any]


def load_results(path: Path) -> dict[str, Any]:
    """Read ``results_*.json``; a directory means the newest results file under it."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"{path}: no lm-eval results_*.json file under it")
        path = found[-1]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ValueError(f"{path}: not an lm-eval results file (no 'results' table)")
    data.setdefault("_path", str(path))
    return data


def _metric(entry: dict[str, Any], metric: str) -> tuple[float | None, float | None]:
    value = entry.get(f"{metric},none")
    stderr = entry.get(f"{metric}_stderr,none")
    return (value, stderr if isinstance(stderr, (int, float)) else None)


def subject_scores(results: dict[str, Any], metric: str = "acc") -> dict[str, float]:
    """Subject -> score, for the CMMLU subjects present in ``results``."""
    table = results["results"]
    out = {}
    for name in SUBJECTS:
        entry = table.get(cmmlu_task_name(name))
        if entry is not None and _metric(entry, metric)[0] is not None:
            out[name] = float(_metric(entry, metric)[0])
    return out


def lm_eval_view(results: dict[str, Any], metric: str = "acc") -> dict[str, Score]:
    """lm-eval's own group aggregates (size-weighted, disjoint categories)."""
    table = results["results"]
    view: dict[str, Score] = {}
    for key in [*CATEGORIES, "average"]:
        task = CMMLU_GROUP if key == "average" else f"{CMMLU_GROUP}_{key}"
        if task in table:
            value, stderr = _metric(table[task], metric)
            if value is not None:
                view[key] = {"score": value, "stderr": stderr}
    return view


def leaderboard_view(results: dict[str, Any], metric: str = "acc") -> dict[str, Score]:
    """CMMLU leaderboard view: unweighted subject means, overlapping categories."""
    scores = subject_scores(results, metric)
    view: dict[str, Score] = {}
    for category in CATEGORIES:
        members = [s for s in SUBJECTS.values() if category in s.official_categories]
        have = [scores[s.name] for s in members if s.name in scores]
        if have:
            view[category] = {"score": fmean(have), "subjects": len(have), "of": len(members)}
    if scores:
        view["average"] = {
            "score": fmean(scores.values()),
            "subjects": len(scores),
            "of": len(SUBJECTS),
        }
    return view


def format_views(results: dict[str, Any], metric: str = "acc") -> dict[str, Any]:
    """Both views as data plus a Markdown table."""
    groups, board = lm_eval_view(results, metric), leaderboard_view(results, metric)
    if not groups and not board:
        raise ValueError(
            f"{results.get('_path', 'results')}: no {CMMLU_GROUP} scores for metric {metric!r}; "
            f"was it a run of --tasks {CMMLU_GROUP}?"
        )
    lines = [
        f"| CMMLU ({metric}) | lm-eval groups (size-weighted) | leaderboard (subject mean) |",
        "|---|---|---|",
    ]
    for key in [*CATEGORIES, "average"]:
        label = CATEGORIES.get(key, "Average")
        g = groups.get(key)
        b = board.get(key)
        g_txt = (
            "–"
            if g is None
            else f"{100 * g['score']:.2f}"
            + (f" ± {100 * g['stderr']:.2f}" if g["stderr"] is not None else "")
        )
        b_txt = (
            "–"
            if b is None
            else f"{100 * b['score']:.2f}"
            + ("" if b["subjects"] == b["of"] else f" ({b['subjects']}/{b['of']} subjects)")
        )
        lines.append(f"| {label} | {g_txt} | {b_txt} |")
    return {"metric": metric, "lm_eval": groups, "leaderboard": board, "markdown": "\n".join(lines)}
