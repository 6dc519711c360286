"""English MMLU data: reading a subject's dev and test questions from a local copy or the Hub.

Where the data comes from, in order:

1. ``--metadata '{"mmlu_dir": "DIR"}'`` (or ``metadata=`` in the TaskManager),
2. the ``LANGADAPT_MMLU_DIR`` environment variable,
3. the Hugging Face Hub: ``cais/mmlu``, one config per subject with splits ``dev`` and
   ``test`` (what lm-eval's own ``mmlu`` task reads).

A local directory is the original CSV release (``data.tar`` of hendrycks/test):
``dev/<subject>_dev.csv`` and ``test/<subject>_test.csv``, no header, each row
``question,A,B,C,D,answer`` with the answer a letter. Rows become the Hub's schema
(``question``, ``subject``, ``choices``, ``answer`` as the index of the letter), so
the prompt is lm-eval's, whichever source; texts are kept as written.
"""

from __future__ import annotations

import csv
import functools
import io
from pathlib import Path
from typing import Any

import datasets

from langadapt_tasks.benchmarks.mcdata import SPLITS, Benchmark
from langadapt_tasks.benchmarks.mmlu_subjects import SUBJECTS
from langadapt_tasks.files import read_text

ENV_DIR = "LANGADAPT_MMLU_DIR"
METADATA_DIR = "mmlu_dir"
HUB_REPO = "cais/mmlu"
CHOICES = ("A", "B", "C", "D")
COLUMNS = ("question", *CHOICES, "answer")


class MMLUDataError(ValueError):
    """The MMLU data could not be found or a question is malformed."""


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """The question in the Hub's schema, or an error naming ``where`` (file and row).

    ``row`` is either the Hub's (``choices`` a list, ``answer`` an index) or a CSV
    row's cells by column (``A``–``D``, ``answer`` a letter).
    """
    if not isinstance(row, dict):
        raise MMLUDataError(f"{where}: expected a question")
    choices = row.get("choices")
    if choices is None:
        choices = [row.get(c) for c in CHOICES]
    question, answer = row.get("question"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise MMLUDataError(f"{where}: the question is empty")
    if not isinstance(choices, list) or len(choices) != len(CHOICES):
        raise MMLUDataError(f"{where}: expected four choices (A, B, C, D)")
    if not all(isinstance(c, str) for c in choices):
        raise MMLUDataError(f"{where}: a choice is missing; each row needs {','.join(COLUMNS)}")
    if isinstance(answer, str) and answer.strip() in CHOICES:
        answer = CHOICES.index(answer.strip())
    if isinstance(answer, bool) or answer not in range(len(CHOICES)):
        raise MMLUDataError(f"{where}: answer {answer!r} is not one of A, B, C, D")
    return {
        "question": question,
        "subject": str(row.get("subject") or ""),
        "choices": list(choices),
        "answer": answer,
    }


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Read one file of the CSV release (no header), validating every row."""
    text = read_text(path, MMLUDataError)
    subject = path.stem.rsplit("_", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[dict[str, Any]] = []
    first = 1
    try:
        for cells in reader:
            where = f"{path}, line {first}"
            first = reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(COLUMNS):
                raise MMLUDataError(
                    f"{where}: {len(cells)} cells, expected {len(COLUMNS)} "
                    f"({','.join(COLUMNS)}; the release has no header)"
                )
            row = dict(zip(COLUMNS, cells, strict=True))
            rows.append(validate_row({**row, "subject": subject}, where))
    except csv.Error as err:
        raise MMLUDataError(
            f"{path}, line {first}: unclosed or stray quote in the record starting here ({err})"
        ) from err
    if not rows:
        raise MMLUDataError(f"{path}: no questions in file")
    return rows


def _hub_rows(subject: str) -> dict[str, tuple[str, Any]]:
    loaded = datasets.load_dataset(HUB_REPO, subject)
    return {split: (f"{HUB_REPO} ({subject}, {split})", loaded[split]) for split in SPLITS}


MMLU = Benchmark(
    name="MMLU",
    env_dir=ENV_DIR,
    metadata_dir=METADATA_DIR,
    hub_repo=HUB_REPO,
    subjects=SUBJECTS,
    file_name=lambda subject, split: f"{subject}_{split}.csv",
    read_file=read_csv,
    hub_rows=_hub_rows,
    validate_row=validate_row,
    row_label="row",
    error=MMLUDataError,
    layout="dev/<subject>_dev.csv and test/<subject>_test.csv as in MMLU's CSV release",
    local_copy="MMLU's CSV release (its data/ folder with dev/ and test/)",
)
data_dir = MMLU.data_dir
availability = MMLU.availability
_load = functools.cache(MMLU.load)


def load_subject(mmlu_subject: str, **metadata: Any) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: the test and dev splits of one subject; only
    ``mmlu_dir`` of the metadata lm-eval passes is read here."""
    return _load(data_dir(metadata), MMLU.known(mmlu_subject))
