"""The study's published figures (``published.csv``), to set this project's results beside.

The study ("Exploring the Limits of Fine-Tuning in Language Adaptation for LLMs") fine-tuned
Meta-Llama-3-8B and Mistral-7B-v0.1 with QLoRA presets r8-a32, r16-a32 and r16-a48 on Chinese
(zh) and Turkish (tr) and printed Tables 1–10. ``published.csv`` holds every number of those
tables, one row each, as printed:

* Tables 1–2: CMMLU, 5-shot accuracy in %, per category of the study's own split (its sizes:
  stem 2670, humanities 1962, social science 1938, other 1947, china 3065; not the official
  partition), Chinese adapters;
* Tables 3–10: MT-Bench, mean and per category, judged by GPT-4 with the study's two-shot
  1–5 prompt (this project's ``paper`` rubric), scores out of 5.

Columns: ``table`` (the study's number), ``benchmark`` (cmmlu, mtbench), ``language`` (the
evaluation language; an adapter's is also its training language), ``base_model`` (the Hub id
of the base model, also for its instruct model), ``variant`` (base, instruct or a preset),
``category`` (CMMLU's category keys, MT-Bench's categories or ``mean``), ``value`` (as
printed) and ``printed_label`` (the study's row or column label of the model). The study's
"Mistral Baseline" (Tables 4, 8) and "Mistral-7b-v0.1" column (Tables 6, 10) are its instruct
model, as its text says.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path

from langadapt_tasks.benchmarks.cmmlu_subjects import CATEGORIES as CMMLU_CATEGORIES
from langadapt_tasks.benchmarks.mtbench import CATEGORIES as MT_CATEGORIES

CSV_PATH = Path(__file__).with_name("published.csv")
COLUMNS = (
    "table",
    "benchmark",
    "language",
    "base_model",
    "variant",
    "category",
    "value",
    "printed_label",
)
MODELS = ("meta-llama/Meta-Llama-3-8B", "mistralai/Mistral-7B-v0.1")
VARIANTS = ("base", "instruct", "r8-a32", "r16-a32", "r16-a48")
LANGUAGES = {"cmmlu": ("zh",), "mtbench": ("zh", "tr")}
CATEGORIES = {"cmmlu": tuple(CMMLU_CATEGORIES), "mtbench": (*MT_CATEGORIES, "mean")}
RANGES = {"cmmlu": (0.0, 100.0), "mtbench": (0.0, 5.0)}
# How the study measured each benchmark.
PROTOCOLS = {
    "cmmlu": "CMMLU 5-shot accuracy (%), the study's own category split",
    "mtbench": "MT-Bench judged by GPT-4 with the study's two-shot 1–5 prompt (rubric paper)",
}
STUDY_SHOTS = 5
# The study's CMMLU categories (its sizes match no official partition).
STUDY_CMMLU_SIZES = {
    "stem": 2670,
    "humanities": 1962,
    "social science": 1938,
    "other": 1947,
    "china": 3065,
}
STUDY_RUBRIC = "paper"


class PublishedDataError(ValueError):
    """A row of the published figures is malformed; the message names the file and line."""


@dataclass(frozen=True)
class PublishedValue:
    value: float
    table: int
    printed_label: str


@dataclass(frozen=True)
class PublishedRow:
    table: int
    benchmark: str
    language: str
    base_model: str
    variant: str
    category: str
    value: float
    printed_label: str
    line: int


def _row(fields: list[str], where: str, line: int) -> PublishedRow:
    if len(fields) != len(COLUMNS):
        raise PublishedDataError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)}")
    table, bench, lang, model, variant, category, value, label = (f.strip() for f in fields)
    if not table.isdigit() or int(table) < 1:
        raise PublishedDataError(f"{where}: table {table!r} is not a positive whole number")
    if bench not in LANGUAGES:
        raise PublishedDataError(f"{where}: benchmark {bench!r} is none of {sorted(LANGUAGES)}")
    checks = (
        ("language", lang, LANGUAGES[bench]),
        ("base_model", model, MODELS),
        ("variant", variant, VARIANTS),
        ("category", category, CATEGORIES[bench]),
    )
    for name, got, allowed in checks:
        if got not in allowed:
            raise PublishedDataError(f"{where}: {name} {got!r} is none of {', '.join(allowed)}")
    try:
        number = float(value)
    except ValueError:
        raise PublishedDataError(f"{where}: value {value!r} is not a number") from None
    low, high = RANGES[bench]
    if not math.isfinite(number) or not low <= number <= high:
        raise PublishedDataError(f"{where}: value {value!r} is outside {low:g}–{high:g}")
    if not label:
        raise PublishedDataError(f"{where}: printed_label is empty")
    return PublishedRow(int(table), bench, lang, model, variant, category, number, label, line)


def read_published(path: Path) -> list[PublishedRow]:
    """Every row of a published-figures CSV, checked; ``PublishedDataError`` names the line."""
    rows: list[PublishedRow] = []
    seen: dict[tuple[str, ...], int] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise PublishedDataError(f"{path}, line 1: the header must be {','.join(COLUMNS)}")
        for fields in reader:
            where = f"{path}, line {reader.line_num}"
            row = _row(fields, where, reader.line_num)
            key = (row.benchmark, row.language, row.base_model, row.variant, row.category)
            if key in seen:
                raise PublishedDataError(f"{where}: the same figure as line {seen[key]}")
            seen[key] = row.line
            rows.append(row)
    return rows


@functools.cache
def _shipped() -> tuple[PublishedRow, ...]:
    return tuple(read_published(CSV_PATH))


def study_model(base_model: str) -> str | None:
    """The study's Hub id that ``base_model`` names, or None.

    A Hub id matches case-insensitively; so does any path (a local folder, a mirror on the
    Hub) whose last component ends with the model's repo name: ``/models/Meta-Llama-3-8B``.
    """
    text = base_model.strip().rstrip("/\\").lower()
    last = text.replace("\\", "/").rpartition("/")[2]
    for hub_id in MODELS:
        if text == hub_id.lower() or last.endswith(hub_id.rpartition("/")[2].lower()):
            return hub_id
    return None


def published(
    base_model: str, variant: str, language: str, benchmark: str
) -> dict[str, PublishedValue]:
    """The study's figures of a model (category -> value); empty when it printed none.

    ``language`` is the evaluation language (an adapter's is also its training language),
    ``benchmark`` is ``cmmlu`` or ``mtbench``.
    """
    hub_id = study_model(base_model)
    return {
        r.category: PublishedValue(r.value, r.table, r.printed_label)
        for r in _shipped()
        if (r.base_model, r.variant, r.language, r.benchmark)
        == (hub_id, variant.strip().lower(), language.strip().lower(), benchmark)
    }
