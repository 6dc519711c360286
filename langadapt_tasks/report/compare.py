"""Our results beside the study's published figures: ours, the study's and the difference."""

from __future__ import annotations

import re
from collections.abc import Mapping

from langadapt_tasks.benchmarks.mtbench import CATEGORIES as MT_CATEGORIES
from langadapt_tasks.benchmarks.mtbench import group_name
from langadapt_tasks.benchmarks.scoring import CMMLU
from langadapt_tasks.report.identity import Identity
from langadapt_tasks.report.inputs import Model
from langadapt_tasks.report.published import (
    PROTOCOLS,
    STUDY_CMMLU_SIZES,
    STUDY_RUBRIC,
    STUDY_SHOTS,
    PublishedValue,
    published,
)
from langadapt_tasks.report.tables import Cell, DiffTable, Table, judged_answers

PUBLISHED, DIFFERENCE = "published", "Δ"
# The study's judge: GPT-4, or one of its dated snapshots (gpt-4-0613).
_STUDY_JUDGE = re.compile(r"gpt-4(-\d{4})?")
_CMMLU_NOTE = (
    "Ours are lm-eval's groups (the official partition, China-specific disjoint); the study's "
    "categories have other sizes ("
    + ", ".join(f"{k} {n}" for k, n in STUDY_CMMLU_SIZES.items())
    + " questions)."
)


def row_name(name: str, kind: str) -> str:
    """The name of a model's published (``PUBLISHED``) or difference (``DIFFERENCE``) row."""
    return f"{name} — {kind}"


def _columns(benchmark: str) -> dict[str, str]:
    """Published category -> our column."""
    if benchmark == "cmmlu":
        return dict(CMMLU.categories)
    return {c: c for c in (*MT_CATEGORIES, "mean")}


def _sources(values: dict[str, PublishedValue]) -> str:
    seen: dict[tuple[int, str], list[str]] = {}
    for category, v in values.items():
        seen.setdefault((v.table, v.printed_label), []).append(category)
    return "; ".join(
        f"Table {t} '{label}'" + (" (mean)" if cats == ["mean"] else "")
        for (t, label), cats in sorted(seen.items())
    )


def _cmmlu_differences(model: Model) -> list[str]:
    tasks = [t for s in CMMLU.members if (t := CMMLU.task(s)) in model.sources]
    shots = sorted({n for t in tasks if (n := model.sources[t].n_shot(t)) is not None})
    out = []
    if not shots:
        out.append(f"few-shot count not recorded (the study: {STUDY_SHOTS}-shot)")
    elif shots != [STUDY_SHOTS]:
        out.append(f"{'/'.join(map(str, shots))}-shot (the study: {STUDY_SHOTS}-shot)")
    return out + _limits(model, tasks)


def _limits(model: Model, tasks: list[str]) -> list[str]:
    limits = sorted({f"{r.limit:g}" for t in tasks if (r := model.sources[t]).limit is not None})
    return [f"run with --limit {', '.join(limits)}: a smoke test"] if limits else []


def _mtbench_differences(model: Model, language: str) -> list[str]:
    group = group_name(language, 1)
    tasks = [t for c in MT_CATEGORIES if (t := f"{group}_{c}") in model.sources]
    try:
        judged = judged_answers(model, group)
    except (OSError, ValueError):
        judged = None
    out = []
    if judged is None or not judged.verdict_files:
        if any("judge_score,none" in model.tasks[t] for t in tasks):
            out.append("judge and rubric not recorded (lm-eval's own scores)")
    else:
        for judge, rubric in sorted(judged.judges):
            if not _STUDY_JUDGE.fullmatch(judge.lower().rpartition("/")[2]):
                out.append(f"judge {judge} (the study: GPT-4)")
            if rubric != STUDY_RUBRIC:
                out.append(f"rubric {rubric} (the study: {STUDY_RUBRIC})")
    return out + _limits(model, tasks)


def published_table(
    table: Table,
    benchmark: str,
    language: str,
    models: Mapping[str, Model],
    identities: Mapping[str, Identity],
) -> DiffTable | None:
    """Per model with a published counterpart: our row, the study's and ours minus the study's.

    ``table``: CMMLU's lm-eval groups (``benchmark`` cmmlu) or MT-Bench's first turn in
    ``language`` (mtbench). Matched by identity (base model, variant, language), never by row
    position. None when no model has a published counterpart.
    """
    columns = _columns(benchmark)
    pct = benchmark == "cmmlu"
    out = DiffTable(
        f"{table.key}_published",
        f"vs. published: {table.title}",
        list(columns.values()),
        ["pct2" if pct else "score"] * len(columns),
        scale=table.scale,
    )
    sources, differences = [], []
    for name, cells in table.rows.items():
        ident = identities.get(name)
        if ident is None or (ident.is_adapter and ident.language != language):
            continue
        values = published(ident.base_model, ident.variant, language, benchmark)
        if not values:
            continue
        ours, theirs, diff = [], [], []
        for category, column in columns.items():
            mine = cells[table.columns.index(column)]
            got = values.get(category)
            study = None if got is None else got.value / (100 if pct else 1)
            ours.append(mine)
            theirs.append(Cell(study))
            both = mine.value is not None and study is not None
            diff.append(Cell(mine.value - study, mine.stderr) if both else Cell(None))
        out.rows[name] = ours
        out.rows[row_name(name, PUBLISHED)] = theirs
        out.rows[row_name(name, DIFFERENCE)] = diff
        out.signed_rows.append(row_name(name, DIFFERENCE))
        sources.append(f"{row_name(name, PUBLISHED)}: {_sources(values)}")
        model = models[name]
        found = _cmmlu_differences(model) if pct else _mtbench_differences(model, language)
        if found:
            differences.append(f"{name}: {'; '.join(found)}")
    if not out.rows:
        return None
    out.notes.append(
        f"Published: the study's figures, measured as {PROTOCOLS[benchmark]}; "
        f"'{DIFFERENCE}' rows are ours minus the study's (± our stderr)."
    )
    out.notes.append(_CMMLU_NOTE if pct else "Ours: the first-turn answers.")
    out.notes += sources
    if differences:
        out.notes.append("Not measured as the study did: " + " | ".join(differences))
    return out
