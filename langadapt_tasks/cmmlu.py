"""CMMLU data for the ``cmmlu_langadapt`` tasks: loading, validation, prompts.

Where the data comes from, in order:

1. ``--metadata '{"cmmlu_dir": "DIR"}'`` (or ``metadata=`` in the TaskManager),
2. the ``LANGADAPT_CMMLU_DIR`` environment variable,
3. the Hugging Face Hub: the Parquet export of ``haonan-li/cmmlu``. The Hub
   repository itself needs a loading script, which ``datasets>=4`` no longer
   runs, so the Parquet branch (``refs/convert/parquet``) is read directly.

A local directory has CMMLU's GitHub layout: ``dev/<subject>.csv`` and
``test/<subject>.csv`` with columns ``,Question,A,B,C,D,Answer``.
"""

from __future__ import annotations

import csv
import functools
import logging
from pathlib import Path
from typing import Any

import datasets

from langadapt_tasks.cmmlu_subjects import SUBJECTS
from langadapt_tasks.paths import local_dir

ENV_DIR = "LANGADAPT_CMMLU_DIR"
METADATA_DIR = "cmmlu_dir"
HUB_REPO = "haonan-li/cmmlu"
HUB_FILES = "hf://datasets/haonan-li/cmmlu@~parquet/{subject}/{split}/*.parquet"
SPLITS = ("test", "dev")
CHOICES = ("A", "B", "C", "D")
FIELDS = ("Question", *CHOICES, "Answer")


class _QuietCustomDatasetHint(logging.Filter):
    """Drop lm-eval's per-task hint about custom datasets (67 identical lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed to `--metadata`" not in record.getMessage()


logging.getLogger("lm_eval.api.task").addFilter(_QuietCustomDatasetHint())


class CMMLUDataError(ValueError):
    """The CMMLU data could not be found or a row is malformed."""


def validate_row(row: dict[str, Any], where: str) -> dict[str, str]:
    """Return the row's six fields, or raise naming ``where`` (file and row)."""
    missing = [f for f in FIELDS if f not in row]
    if missing:
        raise CMMLUDataError(f"{where}: missing column(s) {missing}; expected {list(FIELDS)}")
    out = {f: "" if row[f] is None else str(row[f]).strip() for f in FIELDS}
    empty = [f for f in FIELDS if not out[f]]
    if empty:
        raise CMMLUDataError(
            f"{where}: empty field(s) {empty}; every question needs a text, "
            "four options and an answer"
        )
    if out["Answer"] not in CHOICES:
        raise CMMLUDataError(f"{where}: answer {out['Answer']!r} is not one of A, B, C, D")
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    """Read one CMMLU CSV (GitHub layout), validating every row."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = []
        for row in reader:
            # csv reports the physical line the row ended on; data starts after the header.
            where = f"{path}, line {reader.line_num}"
            if None in row:  # more cells than header columns
                raise CMMLUDataError(
                    f"{where}: {len(row) - 1 + len(row[None])} cells, "
                    f"expected {len(reader.fieldnames or [])}"
                )
            rows.append(validate_row(row, where))
    if not rows:
        raise CMMLUDataError(f"{path}: no questions in file")
    return rows


def _from_dir(root: Path, subject: str) -> datasets.DatasetDict:
    parts = {}
    for split in SPLITS:
        path = root / split / f"{subject}.csv"
        if not path.is_file():
            raise CMMLUDataError(
                f"{path} not found: the CMMLU directory {root} must hold dev/<subject>.csv "
                "and test/<subject>.csv as in CMMLU's GitHub repository (data/)"
            )
        parts[split] = datasets.Dataset.from_list(read_csv(path))
    return datasets.DatasetDict(parts)


def _from_hub(subject: str) -> datasets.DatasetDict:
    files = {split: HUB_FILES.format(subject=subject, split=split) for split in SPLITS}
    loaded = datasets.load_dataset("parquet", data_files=files)
    parts = {}
    for split in SPLITS:
        rows = [validate_row(r, f"{files[split]}, row {i}") for i, r in enumerate(loaded[split])]
        parts[split] = datasets.Dataset.from_list(rows)
    return datasets.DatasetDict(parts)


def data_dir(metadata: dict[str, Any] | None = None) -> Path | None:
    """The local CMMLU directory chosen by task metadata or environment, if any."""
    return local_dir(metadata, METADATA_DIR, ENV_DIR, CMMLUDataError)


@functools.cache
def _load(root: Path | None, subject: str) -> datasets.DatasetDict:
    if root is not None:
        return _from_dir(root, subject)
    try:
        return _from_hub(subject)
    except Exception as err:  # offline, gated, renamed: all end the same way
        raise CMMLUDataError(
            f"CMMLU subject {subject!r} could not be loaded from the Hub ({HUB_REPO}: "
            f"{type(err).__name__}: {err}). Point at a local copy of CMMLU's data/ directory "
            f"instead, with the environment variable {ENV_DIR}=DIR or "
            f'lm_eval --metadata \'{{"{METADATA_DIR}": "DIR"}}\'.'
        ) from err


def load_subject(cmmlu_subject: str, **metadata: Any) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: the test and dev splits of one subject.

    lm-eval passes the task's metadata (``--metadata`` and the model args) as
    keyword arguments; only ``cmmlu_dir`` is read here.
    """
    if cmmlu_subject not in SUBJECTS:
        raise CMMLUDataError(f"unknown CMMLU subject {cmmlu_subject!r}")
    return _load(data_dir(metadata), cmmlu_subject)


def doc_to_target(doc: dict[str, str]) -> int:
    return CHOICES.index(doc["Answer"])
