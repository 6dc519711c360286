"""TurkishMMLU data: reading a subject's dev and test questions from a local copy or the Hub.

Where the data comes from, in order:

1. ``--metadata '{"turkishmmlu_dir": "DIR"}'`` (or ``metadata=`` in the TaskManager),
2. the ``LANGADAPT_TURKISHMMLU_DIR`` environment variable,
3. the Hugging Face Hub: ``AYueksel/TurkishMMLU``, one config per subject (e.g.
   ``Religion_and_Ethics``) with splits ``dev`` and ``test``; no loading script.

A local directory has the layout of the TurkishMMLU GitHub repository
(ArdaYueksel/TurkishMMLU): ``dev/TurkishMMLU_<Subject>.json`` and
``test/TurkishMMLU_<Subject>.json`` (``<Subject>`` as in ``Religion and Ethics``),
each a JSON array of ``{"question": ..., "choices": [5 texts], "answer": "A".."E"}``.
A malformed question is an error naming the file and the question's index in the
array (from 0).

What is TurkishMMLU's own is here: the JSON reader and the question check, and the
:data:`TURKISHMMLU` entry of the shared multiple-choice data layer
(:mod:`langadapt_tasks.benchmarks.mcdata`), which finds the directory, reads the Hub (after a
quick check that it is reachable) and words the errors.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import datasets

from langadapt_tasks.benchmarks.mcdata import SPLITS, Benchmark
from langadapt_tasks.benchmarks.turkishmmlu_subjects import SUBJECTS
from langadapt_tasks.files import read_text

ENV_DIR = "LANGADAPT_TURKISHMMLU_DIR"
METADATA_DIR = "turkishmmlu_dir"
HUB_REPO = "AYueksel/TurkishMMLU"
CHOICES = ("A", "B", "C", "D", "E")
FIELDS = ("question", "choices", "answer")


class TurkishMMLUDataError(ValueError):
    """The TurkishMMLU data could not be found or a question is malformed."""


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """The question's three fields, or an error naming ``where`` (file and index).

    Texts are kept as written (the prompt strips the question, as the paper's
    lm-eval configuration does); the answer letter is compared without spaces.
    """
    if not isinstance(row, dict):
        raise TurkishMMLUDataError(f"{where}: expected an object with {list(FIELDS)}")
    missing = [f for f in FIELDS if row.get(f) is None]
    if missing:
        raise TurkishMMLUDataError(f"{where}: missing field(s) {missing}; expected {list(FIELDS)}")
    question, choices, answer = row["question"], row["choices"], row["answer"]
    if not isinstance(question, str) or not question.strip():
        raise TurkishMMLUDataError(f"{where}: 'question' must be a non-empty text")
    if not isinstance(choices, list) or len(choices) != len(CHOICES):
        count = len(choices) if isinstance(choices, list) else type(choices).__name__
        raise TurkishMMLUDataError(
            f"{where}: 'choices' has {count} entries; expected a list of {len(CHOICES)} texts "
            f"({', '.join(CHOICES)})"
        )
    if not all(isinstance(c, str) for c in choices):
        raise TurkishMMLUDataError(f"{where}: every choice must be a text")
    letter = answer.strip() if isinstance(answer, str) else answer
    if letter not in CHOICES:
        raise TurkishMMLUDataError(f"{where}: answer {answer!r} is not one of {', '.join(CHOICES)}")
    return {"question": question, "choices": list(choices), "answer": letter}


def read_json(path: Path) -> list[dict[str, Any]]:
    """Read one TurkishMMLU file (a JSON array of questions), validating every question."""
    text = read_text(path, TurkishMMLUDataError)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise TurkishMMLUDataError(
            f"{path}, line {err.lineno}: not JSON ({err.msg}); expected an array of questions"
        ) from err
    if not isinstance(items, list):
        raise TurkishMMLUDataError(f"{path}: expected a JSON array of questions")
    if not items:
        raise TurkishMMLUDataError(f"{path}: no questions in file")
    return [validate_row(item, f"{path}, question index {i}") for i, item in enumerate(items)]


def _hub_rows(subject: str) -> dict[str, tuple[str, Any]]:
    config = SUBJECTS[subject].hub_config
    loaded = datasets.load_dataset(HUB_REPO, config)
    return {split: (f"{HUB_REPO} ({config}, {split})", loaded[split]) for split in SPLITS}


TURKISHMMLU = Benchmark(
    name="TurkishMMLU",
    env_dir=ENV_DIR,
    metadata_dir=METADATA_DIR,
    hub_repo=HUB_REPO,
    subjects=SUBJECTS,
    file_name=lambda subject, _split: SUBJECTS[subject].file_name,
    read_file=read_json,
    hub_rows=_hub_rows,
    validate_row=validate_row,
    row_label="question index",
    error=TurkishMMLUDataError,
    layout=(
        "dev/TurkishMMLU_<Subject>.json and test/TurkishMMLU_<Subject>.json as in "
        "TurkishMMLU's GitHub repository"
    ),
    local_copy="TurkishMMLU's repository (dev/ and test/ folders)",
)
data_dir = TURKISHMMLU.data_dir
availability = TURKISHMMLU.availability
subject_files = TURKISHMMLU.subject_files
_load = functools.cache(TURKISHMMLU.load)


def load_subject(turkishmmlu_subject: str, **metadata: Any) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: the test and dev splits of one subject.

    lm-eval passes the task's metadata (``--metadata`` and the model args) as
    keyword arguments; only ``turkishmmlu_dir`` is read here.
    """
    subject = TURKISHMMLU.known(turkishmmlu_subject)
    return _load(data_dir(metadata), subject)
