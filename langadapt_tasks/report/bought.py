"""The report's first table per language: what each model bought and what it cost, as
differences to the baseline, each with its standard error and a marker when it is within
two standard errors (not told apart from no difference).

Bought: held-out bits per byte in the language (lower is better), its knowledge task, its
MT-Bench mean and language fidelity. Cost: English MMLU, English MT-Bench's mean and its
answers' share of English (an adapter that answers English questions in its language has
lost something), when measured (``study.retention``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from langadapt_tasks.report import heldout
from langadapt_tasks.report.inputs import Model
from langadapt_tasks.report.tables import Cell, DiffTable, Table, minus

WITHIN = "within 2 SE"
ENGLISH = "en"
# The knowledge benchmark of a language with one of its own (lm-eval's group view).
KNOWLEDGE = {"zh": ("CMMLU", "cmmlu_lm_eval"), "tr": ("TurkishMMLU", "turkishmmlu_lm_eval")}


@dataclass(frozen=True)
class Measure:
    """One column: a flat table's column, and which side of the ledger it is on."""

    label: str
    table: str  # the flat table's key
    column: str
    cost: bool = False


def measures(language: str) -> list[Measure]:
    """The columns of a language's table, in order: bought, then cost."""
    out = [Measure("Δ held-out bits/byte (lower is better)", heldout.KEY, language)]
    if language in KNOWLEDGE:
        name, key = KNOWLEDGE[language]
        out.append(Measure(f"Δ {name} %", key, "Average"))
    out += [
        Measure("Δ own knowledge %", "multiple_choice", language),
        Measure("Δ MT-Bench mean", f"mtbench_{language}", "mean"),
        Measure("Δ fidelity %", f"mtbench_{language}", "fidelity %"),
    ]
    if language == ENGLISH:  # English itself adapted: nothing of it is a cost
        return out
    out += [
        Measure("Δ English MMLU %", "mmlu", "Average", cost=True),
        Measure("Δ English MT-Bench mean", f"mtbench_{ENGLISH}", "mean", cost=True),
        Measure("Δ English fidelity %", f"mtbench_{ENGLISH}", "fidelity %", cost=True),
    ]
    return out


def _marked(cell: Cell) -> Cell:
    if cell.value is not None and cell.stderr is not None and abs(cell.value) <= 2 * cell.stderr:
        return Cell(cell.value, cell.stderr, WITHIN)
    return cell


def bought_table(
    language: str,
    members: Sequence[str],
    baseline: str,
    tables: Mapping[str, Table],
    models: Mapping[str, Model],
    key_suffix: str = "",
) -> Table | None:
    """Each of ``members`` minus ``baseline`` on the language's measures (flat ``tables`` by
    key); only the measures some member has. None without a baseline row or anything to show."""
    columns: list[tuple[Measure, Table, int]] = []
    for m in measures(language):
        table = tables.get(m.table)
        if table is None or m.column not in table.columns or baseline not in table.rows:
            continue
        i = table.columns.index(m.column)
        if table.rows[baseline][i].value is None:
            continue
        columns.append((m, table, i))
    if language == heldout.GENERIC:
        columns = [c for c in columns if c[0].table == heldout.KEY]
    out = DiffTable(
        f"bought{key_suffix}",
        f"Bought and cost ({language}): each model − {baseline}",
        [m.label for m, _, _ in columns],
        [t.kinds[i] for _, t, i in columns],
        signed_columns=list(range(len(columns))),
    )
    for name in members:
        if name == baseline:
            continue
        row = []
        for m, table, i in columns:
            mine = table.rows.get(name)
            if mine is None:
                row.append(Cell(None))
                continue
            cells = (mine[i], table.rows[baseline][i])
            if m.table == heldout.KEY:
                cell = heldout.difference(models[name], models[baseline], m.column, cells)
            else:
                cell = minus(*cells)
            row.append(_marked(cell))
        if any(c.value is not None for c in row):
            out.rows[name] = row
    if not out.rows:
        return None
    sides = ["bought: " + ", ".join(m.label for m, _, _ in columns if not m.cost)]
    cost = [m.label for m, _, _ in columns if m.cost]
    sides.append("cost: " + (", ".join(cost) if cost else "English retention not measured"))
    out.notes += [
        "; ".join(sides),
        f"± one standard error; '{WITHIN}': the difference is within two standard errors. "
        "Held-out differences are paired over the same messages when both models were "
        "scored on the same rendered rows.",
    ]
    return out
