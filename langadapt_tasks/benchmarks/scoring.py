"""CMMLU and TurkishMMLU scores in two views, from an lm-eval results file.

* ``lm_eval``: what ``lm_eval`` prints. Disjoint groups (for CMMLU, China-specific
  subjects only in ``china_specific``), each the size-weighted mean of its
  questions; the overall score is weighted the same way.
* ``leaderboard``: how the benchmark's paper and leaderboard score. A category is
  the unweighted mean of its subjects' accuracies and the average is the unweighted
  mean over all subjects (67 for CMMLU, 9 for TurkishMMLU). In CMMLU's view a
  China-specific subject also counts in its discipline category.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from langadapt_tasks.benchmarks import mmlu_subjects as mmlu
from langadapt_tasks.benchmarks import turkishmmlu_subjects as tmmlu
from langadapt_tasks.benchmarks.cmmlu_subjects import CATEGORIES, CMMLU_GROUP, SUBJECTS

Score = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    """A multiple-choice benchmark scored by subject: its group, categories and subjects."""

    name: str  # "CMMLU"
    group: str  # the lm-eval group, whose subject tasks are ``<group>_<subject>``
    categories: dict[str, str]  # key -> label, in display order
    members: dict[str, tuple[str, ...]]  # subject -> its categories in the unweighted view
    board: str  # how the unweighted view is named in the Markdown table

    def task(self, subject: str) -> str:
        return f"{self.group}_{subject}"


CMMLU = Benchmark(
    "CMMLU",
    CMMLU_GROUP,
    CATEGORIES,
    {s.name: s.official_categories for s in SUBJECTS.values()},
    "leaderboard (subject mean)",
)
TURKISHMMLU = Benchmark(
    "TurkishMMLU",
    tmmlu.TURKISHMMLU_GROUP,
    tmmlu.CATEGORIES,
    {s.name: (s.category,) for s in tmmlu.SUBJECTS.values()},
    "paper (subject mean)",
)
MMLU = Benchmark(
    "MMLU",
    mmlu.MMLU_GROUP,
    mmlu.CATEGORIES,
    {s: (c,) for s, c in mmlu.SUBJECTS.items()},
    "subject mean",
)
BENCHMARKS = {b.group: b for b in (CMMLU, TURKISHMMLU, MMLU)}


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


def subject_scores(
    results: dict[str, Any], metric: str = "acc", bench: Benchmark = CMMLU
) -> dict[str, float]:
    """Subject -> score, for the benchmark's subjects present in ``results``."""
    table = results["results"]
    out = {}
    for name in bench.members:
        entry = table.get(bench.task(name))
        if entry is not None and _metric(entry, metric)[0] is not None:
            out[name] = float(_metric(entry, metric)[0])
    return out


def lm_eval_view(
    results: dict[str, Any], metric: str = "acc", bench: Benchmark = CMMLU
) -> dict[str, Score]:
    """lm-eval's own group aggregates (size-weighted, disjoint categories)."""
    table = results["results"]
    view: dict[str, Score] = {}
    for key in [*bench.categories, "average"]:
        task = bench.group if key == "average" else f"{bench.group}_{key}"
        if task in table:
            value, stderr = _metric(table[task], metric)
            if value is not None:
                view[key] = {"score": value, "stderr": stderr}
    return view


def leaderboard_view(
    results: dict[str, Any], metric: str = "acc", bench: Benchmark = CMMLU
) -> dict[str, Score]:
    """The paper's / leaderboard's view: unweighted subject means (for CMMLU, China-specific
    subjects also in their discipline category)."""
    scores = subject_scores(results, metric, bench)
    view: dict[str, Score] = {}
    for category in bench.categories:
        members = [s for s, cats in bench.members.items() if category in cats]
        have = [scores[s] for s in members if s in scores]
        if have:
            view[category] = {"score": fmean(have), "subjects": len(have), "of": len(members)}
    if scores:
        view["average"] = {
            "score": fmean(scores.values()),
            "subjects": len(scores),
            "of": len(bench.members),
        }
    return view


def format_views(
    results: dict[str, Any], metric: str = "acc", bench: Benchmark = CMMLU
) -> dict[str, Any]:
    """Both views as data plus a Markdown table."""
    groups = lm_eval_view(results, metric, bench)
    board = leaderboard_view(results, metric, bench)
    if not groups and not board:
        raise ValueError(
            f"{results.get('_path', 'results')}: no {bench.group} scores for metric {metric!r}; "
            f"was it a run of --tasks {bench.group}?"
        )
    lines = [
        f"| {bench.name} ({metric}) | lm-eval groups (size-weighted) | {bench.board} |",
        "|---|---|---|",
    ]
    for key in [*bench.categories, "average"]:
        label = bench.categories.get(key, "Average")
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
