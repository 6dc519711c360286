"""CMMLU data: reading a subject's dev and test rows from a local copy or the Hub.

Where the data comes from, in order:

1. ``--metadata '{"cmmlu_dir": "DIR"}'`` (or ``metadata=`` in the TaskManager),
2. the ``LANGADAPT_CMMLU_DIR`` environment variable,
3. the Hugging Face Hub: the Parquet export of ``haonan-li/cmmlu``. The Hub
   repository itself needs a loading script, which ``datasets>=4`` no longer
   runs, so the Parquet branch (``refs/convert/parquet``) is read directly.

A local directory has CMMLU's GitHub layout: ``dev/<subject>.csv`` and
``test/<subject>.csv`` with columns ``,Question,A,B,C,D,Answer``.

What is CMMLU's own is here: the CSV reader and the row check, and the
:data:`CMMLU` entry of the shared multiple-choice data layer
(:mod:`langadapt_tasks.benchmarks.mcdata`), which finds the directory, reads the Hub and
words the errors.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from pathlib import Path
from typing import Any

import datasets

from langadapt_tasks.benchmarks.cmmlu_subjects import SUBJECTS
from langadapt_tasks.benchmarks.mcdata import SPLITS, Benchmark
from langadapt_tasks.files import read_text

ENV_DIR = "LANGADAPT_CMMLU_DIR"
METADATA_DIR = "cmmlu_dir"
HUB_REPO = "haonan-li/cmmlu"
HUB_FILES = "hf://datasets/haonan-li/cmmlu@~parquet/{subject}/{split}/*.parquet"
CHOICES = ("A", "B", "C", "D")
FIELDS = ("Question", *CHOICES, "Answer")
# A line that starts a record: CMMLU's files hold one record per line, each opening with its
# row id. Read from the raw lines, independently of the CSV reader, to catch merged records.
ROW_START = re.compile(r'"?\d+"?,')


class CMMLUDataError(ValueError):
    """The CMMLU data could not be found or a row is malformed."""


def validate_row(row: dict[str, Any], where: str) -> dict[str, str]:
    """Return the row's six fields, or raise naming ``where`` (file and row).

    The text is kept as written (CMMLU's own code reads it with pandas and
    strips nothing); only the answer letter is compared without spaces.
    """
    missing = [f for f in FIELDS if f not in row]
    if missing:
        raise CMMLUDataError(f"{where}: missing column(s) {missing}; expected {list(FIELDS)}")
    out = {f: "" if row[f] is None else str(row[f]) for f in FIELDS}
    empty = [f for f in FIELDS if not out[f].strip()]
    if empty:
        raise CMMLUDataError(
            f"{where}: empty field(s) {empty}; every question needs a text, "
            "four options and an answer"
        )
    out["Answer"] = out["Answer"].strip()
    if out["Answer"] not in CHOICES:
        raise CMMLUDataError(f"{where}: answer {out['Answer']!r} is not one of A, B, C, D")
    return out


def _swallowed_record(fields: list[str], width: int) -> int | None:
    """Index of a line inside a field that is a whole record on its own, if any.

    An unclosed quote makes the csv module read on, across line breaks, until
    the next quote: the lines it swallows are complete records of their own
    (as many cells as the header). A genuine multi-line field has no such line.
    """
    for field in fields:
        for offset, piece in enumerate(field.splitlines()[1:], 1):
            if len(next(csv.reader([piece]), [])) == width:
                return offset
    return None


def _row_starts(text: str) -> dict[int, str]:
    """Physical line numbers (1-based, header excluded) that open with a row id, and the id."""
    lines = io.StringIO(text, newline="").readlines()  # the csv reader's own line breaks
    return {
        n: line.split(",", 1)[0] for n, line in enumerate(lines[1:], 2) if ROW_START.match(line)
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    """Read one CMMLU CSV (GitHub layout), validating every row.

    Every record becomes a question or an error naming the file and line:
    a field running over lines that are whole records themselves, or that open
    with a row id, is a quote opened in one record and closed in a later one;
    so is a quote still open at the end of the file.
    """
    text = read_text(path, CMMLUDataError)
    starts = _row_starts(text)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    first = 1  # physical line the next record starts on
    try:
        header = next(reader, None)
        if header is None:
            raise CMMLUDataError(f"{path}: empty file; expected the header ,{','.join(FIELDS)}")
        rows = []
        first = reader.line_num + 1
        for cells in reader:
            where = f"{path}, line {first}"
            swallowed = _swallowed_record(cells, len(header))
            if swallowed is not None:
                raise CMMLUDataError(
                    f"{where}: unclosed quote: a field runs on over lines {first + 1}-"
                    f"{reader.line_num}, which are records of their own (line "
                    f"{first + swallowed}); close or double the quote"
                )
            merged = [n for n in range(first + 1, reader.line_num + 1) if n in starts]
            if merged:
                raise CMMLUDataError(
                    f"{path}, lines {first} and {merged[0]}: two records read as one: a quote "
                    f"opened on line {first} closes on line {reader.line_num}, so the record "
                    f"starting on line {merged[0]} (row id {starts[merged[0]]}) would "
                    "become part of a field; close or double the quote"
                )
            first = reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue  # a blank line is not a record
            if len(cells) > len(header):
                raise CMMLUDataError(f"{where}: {len(cells)} cells, expected {len(header)}")
            row = dict(zip(header, cells, strict=False))
            row.update({f: None for f in header[len(cells) :]})
            rows.append(validate_row(row, where))
    except csv.Error as err:  # strict mode: a stray quote, or one open at the end of file
        raise CMMLUDataError(
            f"{path}, line {first}: unclosed or stray quote in the record starting here "
            f"({err} at line {reader.line_num}); close or double the quote"
        ) from err
    if not rows:
        raise CMMLUDataError(f"{path}: no questions in file")
    if len(starts) > len(rows):  # a file with row ids has one per question
        raise CMMLUDataError(
            f"{path}: {len(rows)} questions read but {len(starts)} lines start with a row id; "
            "every question must be one record starting with its row id"
        )
    return rows


def _hub_rows(subject: str) -> dict[str, tuple[str, Any]]:
    files = {split: HUB_FILES.format(subject=subject, split=split) for split in SPLITS}
    loaded = datasets.load_dataset("parquet", data_files=files)
    return {split: (files[split], loaded[split]) for split in SPLITS}


CMMLU = Benchmark(
    name="CMMLU",
    env_dir=ENV_DIR,
    metadata_dir=METADATA_DIR,
    hub_repo=HUB_REPO,
    subjects=SUBJECTS,
    file_name=lambda subject, _split: f"{subject}.csv",
    read_file=read_csv,
    hub_rows=_hub_rows,
    validate_row=validate_row,
    row_label="row",
    error=CMMLUDataError,
    layout="dev/<subject>.csv and test/<subject>.csv as in CMMLU's GitHub repository (data/)",
    local_copy="CMMLU's data/ directory",
)
data_dir = CMMLU.data_dir
availability = CMMLU.availability
_from_dir = CMMLU.from_dir
_load = functools.cache(CMMLU.load)


def load_subject(cmmlu_subject: str, **metadata: Any) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: the test and dev splits of one subject.

    lm-eval passes the task's metadata (``--metadata`` and the model args) as
    keyword arguments; only ``cmmlu_dir`` is read here.
    """
    subject = CMMLU.known(cmmlu_subject)
    return _load(data_dir(metadata), subject)
