"""The report's tables: CMMLU and TurkishMMLU in both views, the two side by side,
MT-Bench per language, deltas to a baseline."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

from langadapt_tasks.benchmarks.mtbench import CATEGORIES as MT_CATEGORIES
from langadapt_tasks.benchmarks.scoring import (
    CMMLU,
    MMLU,
    TURKISHMMLU,
    Benchmark,
    leaderboard_view,
    lm_eval_view,
)
from langadapt_tasks.judge.rubrics import DEFAULT_RUBRIC, RUBRICS
from langadapt_tasks.judge.verdicts import (
    is_scored,
    model_identity,
    read_verdict_rows,
    samples_items,
)
from langadapt_tasks.report.inputs import Model

CMMLU_COLUMNS = [*CMMLU.categories.values(), "Average"]
TURKISHMMLU_COLUMNS = [*TURKISHMMLU.categories.values(), "Average"]
MMLU_COLUMNS = [*MMLU.categories.values(), "Average"]
# English retention's benchmarks, as the study names them when it could not load them.
ENGLISH_MMLU, ENGLISH_MTBENCH = "English MMLU", "English MT-Bench"
NOT_AVAILABLE = "not available"
MT_COLUMNS = [*MT_CATEGORIES, "mean", "unscored", "fidelity %"]
_MT_GROUP = re.compile(rf"^(mtbench_langadapt_.+?)_({'|'.join(MT_CATEGORIES)})$")


@dataclass
class Cell:
    value: float | None
    stderr: float | None = None
    note: str = ""
    text: str = ""  # shown instead of "–" when there is no value, e.g. "not available"


@dataclass
class Table:
    """Models (rows) by columns; ``kinds`` says how each column is shown and compared."""

    key: str
    title: str
    columns: list[str]
    # "pct" (a share, shown x100), "pct2" (the same, 2 decimals), "score", "count", "bpb"
    # (bits per byte, 3 decimals)
    kinds: list[str]
    rows: dict[str, list[Cell]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    scale: tuple[float, float] | None = None

    def signed(self, row: str, column: int) -> bool:
        """Whether a cell is a difference, shown with its sign."""
        return self.key.endswith("_delta")


@dataclass
class DiffTable(Table):
    """A table with some rows or columns of differences (the rest shown as values)."""

    signed_rows: list[str] = field(default_factory=list)
    signed_columns: list[int] = field(default_factory=list)

    def signed(self, row: str, column: int) -> bool:
        return row in self.signed_rows or column in self.signed_columns


def _num(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not math.isnan(value):
        return float(value)
    return None


def _sem(values: list[float]) -> float | None:
    """Standard error of a mean (None below two values)."""
    return stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None


def minus(a: Cell, b: Cell) -> Cell:
    """``a − b``, the standard errors combined as independent."""
    if a.value is None or b.value is None:
        return Cell(None)
    if a.stderr is None or b.stderr is None:
        return Cell(a.value - b.value)
    return Cell(a.value - b.value, math.hypot(a.stderr, b.stderr))


def _leaderboard_stderr(
    model: Model, category: str | None, bench: Benchmark = CMMLU
) -> float | None:
    """Stderr of an unweighted mean of independent subject accuracies."""
    errs = []
    for subject, categories in bench.members.items():
        if category is not None and category not in categories:
            continue
        row = model.tasks.get(bench.task(subject))
        if row is None:
            continue
        se = _num(row.get("acc_stderr,none"))
        if se is None:
            return None
        errs.append(se)
    return math.sqrt(sum(e * e for e in errs)) / len(errs) if errs else None


# How each benchmark's unweighted view is described in the report.
_BOARD = {
    "CMMLU": "leaderboard — unweighted subject means, China-specific subjects also in their "
    "discipline",
    "TurkishMMLU": "the paper's view — unweighted subject means",
}


def benchmark_tables(
    models: dict[str, Model], bench: Benchmark, metric: str = "acc"
) -> list[Table]:
    """A benchmark's lm-eval groups and its unweighted (paper / leaderboard) view."""
    columns = [*bench.categories.values(), "Average"]
    key = bench.name.lower()
    groups = Table(
        f"{key}_lm_eval",
        f"{bench.name} ({metric}, %): lm-eval groups — size-weighted, disjoint categories",
        columns,
        ["pct"] * len(columns),
    )
    board = Table(
        f"{key}_leaderboard",
        f"{bench.name} ({metric}, %): {_BOARD.get(bench.name, 'unweighted subject means')}",
        columns,
        ["pct"] * len(columns),
    )
    keys = [*bench.categories, "average"]
    limited: list[str] = []
    few_shot: list[str] = []
    for name, model in models.items():
        results = {"results": model.tasks}
        g, b = lm_eval_view(results, metric, bench), leaderboard_view(results, metric, bench)
        if not g and not b:
            continue
        groups.rows[name] = [
            Cell(g[k]["score"], _num(g[k]["stderr"])) if k in g else Cell(None) for k in keys
        ]
        board.rows[name] = [
            Cell(
                b[k]["score"],
                _leaderboard_stderr(model, None if k == "average" else k, bench)
                if metric == "acc"
                else None,
                "" if b[k]["subjects"] == b[k]["of"] else f"{b[k]['subjects']}/{b[k]['of']}",
            )
            if k in b
            else Cell(None)
            for k in keys
        ]
        # What the runs recorded (lm-eval's config and n-shot), never guessed from counts.
        runs = {
            id(model.sources[t]): model.sources[t]
            for t in model.tasks
            if t == bench.group or t.startswith(f"{bench.group}_")
        }.values()
        limits = sorted({f"{r.limit:g}" for r in runs if r.limit is not None})
        if limits:
            limited.append(f"{name} ({', '.join(limits)})")
        shots = sorted(
            {
                str(n)
                for s in bench.members
                if (t := bench.task(s)) in model.sources
                and (n := model.sources[t].n_shot(t)) is not None
            }
        )
        if shots:
            few_shot.append(f"{name}: {'/'.join(shots)}")
    if limited:
        groups.notes.append(
            "Run with lm_eval --limit (questions per subject, or a share if below 1): "
            f"{', '.join(limited)}; scores for a smoke test, not for comparison."
        )
    if few_shot:
        groups.notes.append(f"Few-shot examples per question (n-shot): {'; '.join(few_shot)}.")
    board.notes.append(
        "Stderr: sqrt(sum of subject stderr²) / subjects; "
        "a/b: subjects present of the category's subjects."
        if bench is not CMMLU
        else "Leaderboard stderr: sqrt(sum of subject stderr²) / subjects; "
        "a/b: subjects present of the category's subjects."
    )
    return [t for t in (groups, board) if t.rows]


def cmmlu_tables(models: dict[str, Model], metric: str = "acc") -> list[Table]:
    return benchmark_tables(models, CMMLU, metric)


def knowledge_table(
    models: dict[str, Model], unavailable: dict[str, str] | None = None, metric: str = "acc"
) -> Table | None:
    """CMMLU (zh) and TurkishMMLU (tr) side by side: each benchmark's lm-eval average
    (size-weighted); a benchmark the study could not load shows "not available". Shown
    when TurkishMMLU has results or was not available (a CMMLU-only report stays as it was)."""
    unavailable = unavailable or {}
    benches = (CMMLU, TURKISHMMLU)
    views = {
        name: {b.name: lm_eval_view({"results": m.tasks}, metric, b) for b in benches}
        for name, m in models.items()
    }
    has = {b.name: any(v[b.name] for v in views.values()) for b in benches}
    if not has["TurkishMMLU"] and "TurkishMMLU" not in unavailable:
        return None
    table = Table(
        "knowledge",
        f"Knowledge ({metric}, %): CMMLU (Chinese) and TurkishMMLU (Turkish), "
        "lm-eval averages (size-weighted)",
        [b.name for b in benches],
        ["pct"] * len(benches),
    )
    for name, view in views.items():
        row = []
        for b in benches:
            got = view[b.name].get("average")
            if got is not None:
                row.append(Cell(got["score"], _num(got["stderr"])))
            else:
                row.append(Cell(None, text=NOT_AVAILABLE if b.name in unavailable else ""))
        table.rows[name] = row
    for bench_name, why in unavailable.items():
        if bench_name in has:
            table.notes.append(f"{bench_name}: not available ({why}).")
    if "TurkishMMLU" in unavailable:
        table.notes.append(
            "TurkishMMLU is read from LANGADAPT_TURKISHMMLU_DIR (a copy of its repository's "
            "dev/ and test/ folders, e.g. <data_dir>/turkishmmlu) or the Hub "
            "(AYueksel/TurkishMMLU)."
        )
    return table


def mmlu_table(
    models: dict[str, Model], unavailable: dict[str, str] | None = None, metric: str = "acc"
) -> Table | None:
    """English MMLU (``mmlu_langadapt``: English retention) in lm-eval's groups; rows
    "not available" when the study could not load it."""
    why = (unavailable or {}).get(ENGLISH_MMLU)
    views = {n: lm_eval_view({"results": m.tasks}, metric, MMLU) for n, m in models.items()}
    if not any(views.values()) and why is None:
        return None
    table = Table(
        "mmlu",
        f"English MMLU ({metric}, %): lm-eval groups (size-weighted)",
        MMLU_COLUMNS,
        ["pct"] * len(MMLU_COLUMNS),
    )
    for name, view in views.items():
        if view:
            table.rows[name] = [
                Cell(view[k]["score"], _num(view[k]["stderr"])) if k in view else Cell(None)
                for k in [*MMLU.categories, "average"]
            ]
        elif why is not None:
            table.rows[name] = [Cell(None, text=NOT_AVAILABLE) for _ in MMLU_COLUMNS]
    if why is not None:
        table.notes.append(
            f"{ENGLISH_MMLU}: not available ({why}). It is read from LANGADAPT_MMLU_DIR "
            "(MMLU's CSV release, dev/ and test/, e.g. <data_dir>/mmlu) or the Hub (cais/mmlu)."
        )
    return table


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


@dataclass
class Judged:
    """A model's MT-Bench answers of one group against the verdict rows beside its runs."""

    scores: dict[str, list[float]]  # category -> scores of the scored answers
    unscored: dict[str, int]  # category -> answers the judge gave no score
    missing: dict[str, int]  # category -> answers without a verdict row
    answers: int
    judges: set[tuple[str, str]]  # (judge model, rubric) of the rows used
    folders: list[Path]
    verdict_files: int = 0

    @property
    def rows(self) -> int:
        return self.answers - sum(self.missing.values())


def judged_answers(model: Model, group: str) -> Judged | None:
    """Each answer in the runs' samples with its own verdict (the row judged last for that
    answer, from any verdict file beside the run); None when the runs logged no samples."""
    runs = {model.sources[t].path: (model.sources[t], t) for t in model.tasks}
    by_run: dict[Path, list[Path]] = {}
    for task, run in model.sources.items():
        category = task.removeprefix(f"{group}_")
        if category in MT_CATEGORIES and (path := run.samples_file(task)) is not None:
            by_run.setdefault(run.path, []).append(path)
    if not by_run:
        return None
    out = Judged({c: [] for c in MT_CATEGORIES}, {}, {}, 0, set(), [])
    for results, files in by_run.items():
        folder = results.parent
        verdict_files = runs[results][0].verdict_files()
        out.verdict_files += len(verdict_files)
        rows = read_verdict_rows(verdict_files)
        who = model_identity(folder).name
        out.folders.append(folder)
        for path in files:
            for item in samples_items(path, who):
                out.answers += 1
                row = rows.get(item.id)
                if row is None or list(row.get("answers") or []) != list(item.answers):
                    out.missing[item.category] = out.missing.get(item.category, 0) + 1
                    continue
                judge = row.get("judge") or {}
                rubric = str(judge.get("rubric", DEFAULT_RUBRIC.name))
                out.judges.add((str(judge.get("model", "?")), rubric))
                if is_scored(row):
                    out.scores.setdefault(item.category, []).append(float(row["score"]))
                else:
                    out.unscored[item.category] = out.unscored.get(item.category, 0) + 1
    return out


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
        try:
            judged = judged_answers(model, group)
        except (OSError, ValueError) as err:
            table.notes.append(f"{name}: samples or verdicts unreadable ({err}); ignored")
            judged = None
        judged_in_lm_eval = any("judge_score,none" in (r or {}) for r in rows.values())
        if judged is not None and (judged.verdict_files or not judged_in_lm_eval):
            rubrics = {r for _, r in judged.judges}
            if judged.rows:
                # One known rubric: its scale; several, or a name we do not know: the default's.
                only = next(iter(rubrics)) if len(rubrics) == 1 else DEFAULT_RUBRIC.name
                scales[name] = RUBRICS.get(only, DEFAULT_RUBRIC).scale
            who = ", ".join(f"judge {m}, rubric {r}" for m, r in sorted(judged.judges))
            scores = []
            for c in MT_CATEGORIES:
                got = judged.scores.get(c) or []
                missed = judged.unscored.get(c, 0) + judged.missing.get(c, 0)
                scores.append(
                    Cell(
                        fmean(got) if got else None,
                        _sem(got),
                        f"{missed} unscored" if missed else "",
                    )
                )
            all_scores = [x for c in MT_CATEGORIES for x in judged.scores.get(c) or []]
            mean = Cell(fmean(all_scores) if all_scores else None, _sem(all_scores))
            bad, lost = sum(judged.unscored.values()), sum(judged.missing.values())
            unscored, n = bad + lost, judged.answers
            source = f"{len(all_scores)} of {n} answers scored" + (f" ({who})" if who else "")
            if len(rubrics) > 1:
                source += "; WARNING: verdicts of several rubrics mixed, re-judge with one"
            folders = " ".join(str(f) for f in judged.folders)
            if bad or lost:
                parts = [f"{bad} unscored by the judge"] if bad else []
                parts += [f"{lost} not judged yet"] if lost else []
                source += (
                    f"; NOT ALL JUDGED: {', '.join(parts)}; the mean is over the scored "
                    f"answers only. Judge the rest: langadapt judge {folders}"
                )
            verdicts = bool(judged.verdict_files)
            if not verdicts:  # never judged: fidelity only, without an unscored count
                scores = [Cell(None) for _ in MT_CATEGORIES]
                source = (
                    "not judged (no verdict file beside the answers): fidelity only; "
                    f"judge them with langadapt judge {folders}"
                )
        else:
            verdicts = False
            cat_scores = [_num((rows[c] or {}).get("judge_score,none")) for c in MT_CATEGORIES]
            scores = [Cell(s) for s in cat_scores]
            pairs = [(s, w) for s, w in zip(cat_scores, sizes, strict=True) if s is not None]
            mean = Cell(sum(s * w for s, w in pairs) / sum(w for _, w in pairs) if pairs else None)
            unscored = int(
                sum(_num((r or {}).get("judge_unscored,none")) or 0 for r in rows.values())
            )
            n = sum(w for r, w in zip(rows.values(), sizes, strict=True) if r)
            if judged_in_lm_eval:
                scales[name] = DEFAULT_RUBRIC.scale
                source = (
                    "lm-eval results (no verdict file beside them; "
                    f"scale assumed {DEFAULT_RUBRIC.scale_text})"
                )
            else:
                source = "not judged (judge off): fidelity only"
        pairs = [(f, w) for f, w in zip(fid, sizes, strict=True) if f is not None]
        fidelity = sum(f * w for f, w in pairs) / sum(w for _, w in pairs) if pairs else None
        judged_any = verdicts or name in scales
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
        row = [minus(cells[i], base[i]) for i in keep]
        out.rows[name] = row
    return out
