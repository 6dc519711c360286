"""The report laid out like the study's tables, when the models' identities are known.

Per model of the grid and language: its base, its instruct and that language's adapters (as
in the study's Tables 1–10), with differences to the group's base and, on request, the
study's published figures; across models: each model's best adapter vs. its base and
instruct; one chart per language with every model's rows side by side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from langadapt_tasks.benchmarks.mtbench import CATEGORIES as MT_CATEGORIES
from langadapt_tasks.benchmarks.scoring import TURKISHMMLU
from langadapt_tasks.report.compare import published_table
from langadapt_tasks.report.heldout import KEY as HELDOUT_KEY
from langadapt_tasks.report.heldout import heldout_table
from langadapt_tasks.report.identity import BASE, INSTRUCT, Identity
from langadapt_tasks.report.inputs import Model
from langadapt_tasks.report.tables import (
    CMMLU_COLUMNS,
    MMLU_COLUMNS,
    TURKISHMMLU_COLUMNS,
    Cell,
    DiffTable,
    Table,
    benchmark_tables,
    cmmlu_tables,
    delta_table,
    mc_table,
    minus,
    mmlu_table,
    mtbench_groups,
    mtbench_table,
)

# The language of each multiple-choice benchmark's tables (MT-Bench's: in its key).
BENCH_LANGUAGES = {"cmmlu": "zh", "turkishmmlu": "tr", "mmlu": "en"}
ENGLISH = BENCH_LANGUAGES["mmlu"]


def table_language(key: str) -> str | None:
    """The language a flat report table (by its key) measures; None: several or unknown."""
    head = key.split("_", 1)[0]
    if head == "mtbench":
        return key.removeprefix("mtbench_").removesuffix("_turn2")
    return BENCH_LANGUAGES.get(head)


@dataclass
class Group:
    """One model of the grid in one language: base, instruct, that language's adapters."""

    model: str
    language: str
    members: list[str]
    tables: dict[str, Table] = field(default_factory=dict)  # flat table key -> group's

    @property
    def heading(self) -> str:
        return f"{self.model}, {self.language}" if self.model else self.language

    @property
    def suffix(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9.-]+", "_", self.model)
        return f"__{slug}_{self.language}" if self.model else f"__{self.language}"


def complete(models: Mapping[str, Model], given: Mapping[str, Identity]) -> dict[str, Identity]:
    """Every model's identity; a model without one is its own variant, in every language."""
    return {n: given.get(n) or Identity(n, "", "", n) for n in models}


def _tables(sub: dict[str, Model], language: str, metric: str) -> list[Table]:
    """The benchmark tables of one language over ``sub`` (flat keys)."""
    tables = []
    if language == BENCH_LANGUAGES["cmmlu"]:
        tables += cmmlu_tables(sub, metric)
    if language == BENCH_LANGUAGES["turkishmmlu"]:
        tables += benchmark_tables(sub, TURKISHMMLU, metric)
    if language == ENGLISH:
        tables += [t for t in [mmlu_table(sub, None, metric)] if t is not None]
    for group in mtbench_groups(sub):
        if group.removeprefix("mtbench_langadapt_").removesuffix("_mt") == language:
            table = mtbench_table(sub, group)
            tables += [table] if table.rows else []
    for table in (mc_table(sub, metric), heldout_table(sub)):
        if table is not None and language in table.columns:
            i = table.columns.index(language)
            rows = {n: [cells[i]] for n, cells in table.rows.items() if cells[i].value is not None}
            if rows:
                kind = [table.kinds[i]]
                tables.append(Table(table.key, table.title, [language], kind, rows, table.notes))
    return tables


def build_groups(
    models: dict[str, Model], identities: Mapping[str, Identity], flat: list[Table], metric: str
) -> list[Group]:
    """Groups in input order of the models, languages as the identities then the tables name
    them; the groups' tables are keyed apart (``<key>__<model>_<language>``)."""
    languages: list[str] = []
    found = [i.language for i in identities.values()] + [table_language(t.key) for t in flat]
    found += [c for t in flat if t.key in ("multiple_choice", "heldout") for c in t.columns]
    for lang in found:
        if lang and lang not in languages:
            languages.append(lang)
    order = {name: i for i, name in enumerate(models)}
    labels = list(dict.fromkeys(identities[n].model for n in models))
    groups = []
    for label in labels:
        for lang in languages:
            # English retention (no adapter of English): every model of the label.
            everyone = is_retention(lang, identities)
            members = [
                n
                for n in models
                if identities[n].model == label
                and (everyone or identities[n].language in ("", lang))
            ]
            members.sort(key=lambda n: (identities[n].rank(), order[n]))
            group = Group(label, lang, members)
            for table in _tables({n: models[n] for n in members}, lang, metric):
                group.tables[table.key] = table
                table.key += group.suffix
            if group.tables:
                groups.append(group)
    return groups


def is_retention(language: str, identities: Mapping[str, Identity]) -> bool:
    """Whether ``language`` is measured as English retention: English, and no model is
    adapted to it."""
    return language == ENGLISH and all(i.language != ENGLISH for i in identities.values())


def group_baseline(group: Group, baseline: str, identities: Mapping[str, Identity]) -> str:
    """The global baseline when in the group, else the group's base, else its first row."""
    if baseline in group.members:
        return baseline
    bases = [n for n in group.members if identities[n].variant == BASE]
    return (bases or group.members)[0]


def sections(
    groups: list[Group],
    models: Mapping[str, Model],
    identities: Mapping[str, Identity],
    baseline: str,
    compare: bool,
) -> list[tuple[str, list[Table]]]:
    """Each group's tables, their differences to its baseline and, with ``compare``, the
    study's published figures beside ours."""
    out = []
    for group in groups:
        tables = list(group.tables.values())
        base = group_baseline(group, baseline, identities)
        # Held-out differences are paired, in the group's bought-and-cost table (report.bought).
        diffs = [t for k, t in group.tables.items() if k != HELDOUT_KEY]
        tables += [d for t in diffs if (d := delta_table(t, base)) is not None]
        if compare:
            wanted = {"cmmlu_lm_eval": "cmmlu", f"mtbench_{group.language}": "mtbench"}
            for key, bench in wanted.items():
                if key in group.tables:
                    t = published_table(
                        group.tables[key], bench, group.language, models, identities
                    )
                    tables += [t] if t is not None else []
        out.append((group.heading, tables))
    return out


def _headline(key: str, language: str) -> str | None:
    """The column a benchmark is summed up by: its average, MT-Bench's mean."""
    if key in ("cmmlu_lm_eval", "turkishmmlu_lm_eval", "mmlu"):
        return "Average"
    if key in (f"mtbench_{language}", f"mtbench_{language}_turn2"):
        return "mean"
    return language if key == "multiple_choice" else None


def across(groups: list[Group], identities: Mapping[str, Identity]) -> list[Table]:
    """Per language and benchmark: each model's best adapter (by the benchmark's headline)
    vs. its base and its instruct model."""
    out = []
    for lang in dict.fromkeys(g.language for g in groups):
        mine = [g for g in groups if g.language == lang]
        for key in dict.fromkeys(k for g in mine for k in g.tables):
            column = _headline(key, lang)
            if column is None:
                continue
            first = next(g.tables[key] for g in mine if key in g.tables)
            i = first.columns.index(column)
            kind = first.kinds[i]
            table = DiffTable(
                f"across_{lang}_{key}",
                f"Across models, {first.title} ({column}): each model's best adapter "
                "vs. its base and instruct",
                ["base", "instruct", "best adapter", "best − base", "best − instruct"],
                [kind] * 5,
                scale=first.scale,
                signed_columns=[3, 4],
            )
            for group in (g for g in mine if key in g.tables):
                cell = {n: cells[i] for n, cells in group.tables[key].rows.items()}
                variants = {identities[n].variant: c for n, c in reversed(cell.items())}
                base, instruct = variants.get(BASE, Cell(None)), variants.get(INSTRUCT, Cell(None))
                scored = [
                    n for n, c in cell.items() if identities[n].is_adapter and c.value is not None
                ]
                best = Cell(None)
                if scored:
                    top = max(scored, key=lambda n: cell[n].value or 0.0)
                    best = Cell(cell[top].value, cell[top].stderr, identities[top].variant)
                row = [base, instruct, best, minus(best, base), minus(best, instruct)]
                if any(c.value is not None for c in row):
                    table.rows[group.model or "model"] = row
            if table.rows:
                out.append(table)
    return out


def language_charts(groups: list[Group]) -> dict[str, list[tuple[Table, list[str], str]]]:
    """Per language, one panel per benchmark with every model's rows (base, instruct,
    adapters) side by side."""
    columns = {
        "cmmlu_lm_eval": (CMMLU_COLUMNS, "accuracy (%)"),
        "turkishmmlu_lm_eval": (TURKISHMMLU_COLUMNS, "accuracy (%)"),
        "mmlu": (MMLU_COLUMNS, "accuracy (%)"),
    }
    out: dict[str, list[tuple[Table, list[str], str]]] = {}
    for lang in dict.fromkeys(g.language for g in groups):
        mine = [g for g in groups if g.language == lang]
        wanted = {
            **columns,
            f"mtbench_{lang}": ([*MT_CATEGORIES, "mean"], "judge score"),
            f"mtbench_{lang}_turn2": ([*MT_CATEGORIES, "mean"], "judge score"),
            "multiple_choice": ([lang], "accuracy (%)"),
        }
        for key, (cols, ylabel) in wanted.items():
            parts = [g.tables[key] for g in mine if key in g.tables]
            if not parts:
                continue
            merged = Table(key, parts[0].title, parts[0].columns, parts[0].kinds)
            for part in parts:
                merged.rows.update(part.rows)
            scales = {p.scale for p in parts}
            merged.scale = scales.pop() if len(scales) == 1 else None
            idx = [merged.columns.index(c) for c in cols]
            if any(cells[i].value is not None for cells in merged.rows.values() for i in idx):
                out.setdefault(lang, []).append((merged, cols, ylabel))
    return out


def unshown(
    flat: list[Table], groups: list[Group], identities: Mapping[str, Identity]
) -> list[str]:
    """Notes on results that no group shows (an adapter evaluated in another language)."""
    notes = []
    for table in flat:
        lang = table_language(table.key)
        if lang is None or table.key.endswith("_leaderboard"):  # one note per benchmark
            continue
        shown = {n for g in groups if table.key in g.tables for n in g.tables[table.key].rows}
        for name, cells in table.rows.items():
            if name not in shown and any(c.value is not None for c in cells):
                bench = table.title.split(" (")[0]
                notes.append(
                    f"{name}: {bench} results in no group (an adapter for "
                    f"{identities[name].language}, {bench} is in {lang})"
                )
    return notes
