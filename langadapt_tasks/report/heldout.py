"""Held-out loss in the report: bits per byte of each model on each language's held-out
rows (``heldout_langadapt[_<code>]``), with standard errors read from the samples.

lm-eval reports ``bits_per_byte`` without a standard error (its aggregation is a ratio).
Each scored message ``i`` has ``b_i`` bits (``-loglik / ln 2``) over ``B_i`` bytes and
``bpb = Σb / ΣB``; its standard error is the ratio estimator's,
``sqrt(n/(n-1) · Σ(b_i − bpb·B_i)²) / ΣB``. A difference between two models scored on the
same documents (same rows, same rendered contexts) is paired: the same formula over
``d_i = b_i − b'_i``, far tighter than the two errors combined; otherwise the two are combined.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from pathlib import Path

from langadapt_tasks.benchmarks.heldout import task_name
from langadapt_tasks.files import iter_jsonl
from langadapt_tasks.report.inputs import Model
from langadapt_tasks.report.tables import Cell, Table, minus

TASK = re.compile(r"^heldout_langadapt(?:_([a-z][a-z0-9]{1,7}))?$")
METRIC = "bits_per_byte,none"
GENERIC = "held-out"  # the column of the generic task (no language)
KEY = "heldout"

# doc_id -> (doc_hash, bits, bytes) of one model's samples of one task
Scored = dict[int, tuple[str, float, int]]


def language(task: str) -> str | None:
    """The column of a held-out task: its language code, GENERIC, or None (not one)."""
    m = TASK.match(task)
    return None if m is None else (m.group(1) or GENERIC)


def task_of(column: str) -> str:
    return task_name("" if column == GENERIC else column)


def scored(model: Model, task: str) -> Scored | None:
    """Each scored message of the model's samples of ``task``, or None without samples."""
    run = model.sources.get(task)
    path = run.samples_file(task) if run is not None else None
    if path is None:
        return None
    stat = path.stat()
    return _read(path, stat.st_size, stat.st_mtime_ns) or None


@functools.lru_cache(maxsize=64)
def _read(path: Path, size: int, mtime_ns: int) -> Scored:
    """One samples file, read once however many tables and differences use it (``size`` and
    ``mtime_ns`` key the cache, so a rewritten file is read again)."""
    out: Scored = {}
    for _, sample in iter_jsonl(path, ValueError):
        value = sample.get("bits_per_byte")
        if isinstance(value, list) and len(value) == 2 and isinstance(sample.get("doc_id"), int):
            loglik, size = value
            out[sample["doc_id"]] = (str(sample.get("doc_hash")), -loglik / math.log(2), size)
    return out


def ratio_stderr(bits: list[float], sizes: list[int]) -> float | None:
    """Standard error of ``Σbits / Σsizes`` (the ratio estimator); None below two items."""
    n, total = len(bits), sum(sizes)
    if n < 2 or total <= 0:
        return None
    ratio = sum(bits) / total
    spread = sum((b - ratio * s) ** 2 for b, s in zip(bits, sizes, strict=True))
    return math.sqrt(spread * n / (n - 1)) / total


def heldout_table(models: dict[str, Model]) -> Table | None:
    """Bits per byte, one column per language, with the ratio estimator's standard error."""
    columns: list[str] = []
    for model in models.values():
        for task in model.tasks:
            col = language(task)
            if col is not None and col not in columns:
                columns.append(col)
    if not columns:
        return None
    table = Table(
        KEY,
        "Held-out loss: bits per byte on the language's held-out rows (lower is better)",
        columns,
        ["bpb"] * len(columns),
    )
    for name, model in models.items():
        row = []
        for col in columns:
            task = task_of(col)
            value = model.tasks.get(task, {}).get(METRIC)
            if not isinstance(value, (int, float)):
                row.append(Cell(None))
                continue
            docs = scored(model, task)
            se = ratio_stderr(*_columns(docs.values())) if docs else None
            row.append(Cell(float(value), se))
        table.rows[name] = row
    table.notes.append(
        "bits per byte = −Σ log-likelihood / (ln 2 · Σ UTF-8 bytes) of the assistant messages, "
        "each given its context in the chat template; ± the ratio estimator's standard error"
    )
    return table


def _columns(items: Iterable[tuple[str, float, int]]) -> tuple[list[float], list[int]]:
    """The bits and the bytes of scored messages, as two lists."""
    rows = list(items)
    return [b for _, b, _ in rows], [s for _, _, s in rows]


def difference(a: Model, b: Model, column: str, cells: tuple[Cell, Cell]) -> Cell:
    """``a − b`` in bits per byte: paired over the same documents when both have samples of
    the same ones, else the two standard errors combined (``cells``: a's and b's)."""
    first, second = cells
    if first.value is None or second.value is None:
        return Cell(None)
    task = task_of(column)
    docs_a, docs_b = scored(a, task) or {}, scored(b, task) or {}
    same = docs_a.keys() == docs_b.keys() and all(docs_a[i][0] == docs_b[i][0] for i in docs_a)
    if docs_a and same:
        ids = sorted(docs_a)
        diffs = [docs_a[i][1] - docs_b[i][1] for i in ids]
        se = ratio_stderr(diffs, [docs_a[i][2] for i in ids])
        return Cell(first.value - second.value, se)
    return minus(first, second)
