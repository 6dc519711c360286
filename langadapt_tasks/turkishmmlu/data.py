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
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import HfApi

from langadapt_tasks.files import read_text
from langadapt_tasks.paths import local_dir
from langadapt_tasks.turkishmmlu.subjects import SUBJECTS

ENV_DIR = "LANGADAPT_TURKISHMMLU_DIR"
METADATA_DIR = "turkishmmlu_dir"
HUB_REPO = "AYueksel/TurkishMMLU"
SPLITS = ("test", "dev")
CHOICES = ("A", "B", "C", "D", "E")
FIELDS = ("question", "choices", "answer")
_OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


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


def subject_files(root: Path, subject: str) -> dict[str, Path]:
    """split -> the subject's file in a local copy (GitHub layout)."""
    return {split: root / split / SUBJECTS[subject].file_name for split in SPLITS}


def _from_dir(root: Path, subject: str) -> datasets.DatasetDict:
    parts = {}
    for split, path in subject_files(root, subject).items():
        if not path.is_file():
            raise TurkishMMLUDataError(
                f"{path} not found: the TurkishMMLU directory {root} must hold "
                "dev/TurkishMMLU_<Subject>.json and test/TurkishMMLU_<Subject>.json as in "
                "TurkishMMLU's GitHub repository"
            )
        parts[split] = datasets.Dataset.from_list(read_json(path))
    return datasets.DatasetDict(parts)


def offline(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (default: this process's) turns the Hugging Face Hub off."""
    env = os.environ if env is None else env
    return any(env.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE") for v in _OFFLINE)


@functools.cache
def hub_problem(repo: str = HUB_REPO) -> str | None:
    """Why the Hub dataset ``repo`` cannot be reached, or None. A quick metadata request:
    loading would retry for half a minute before giving up on a machine without network."""
    try:
        HfApi().dataset_info(repo, timeout=10)
    except Exception as err:  # offline, gated, renamed: all end the same way
        return f"{type(err).__name__}: {err}"
    return None


def _from_hub(subject: str) -> datasets.DatasetDict:
    config = SUBJECTS[subject].hub_config
    if not offline() and (problem := hub_problem()) is not None:
        raise ConnectionError(problem)
    loaded = datasets.load_dataset(HUB_REPO, config)
    parts = {}
    for split in SPLITS:
        where = f"{HUB_REPO} ({config}, {split})"
        rows = [
            validate_row(r, f"{where}, question index {i}") for i, r in enumerate(loaded[split])
        ]
        parts[split] = datasets.Dataset.from_list(rows)
    return datasets.DatasetDict(parts)


def data_dir(metadata: dict[str, Any] | None = None) -> Path | None:
    """The local TurkishMMLU directory chosen by task metadata or environment, if any."""
    return local_dir(metadata, METADATA_DIR, ENV_DIR, TurkishMMLUDataError)


def no_source_message(reason: str) -> str:
    """The error of a run with neither a local copy nor the Hub: both local options."""
    return (
        f"TurkishMMLU could not be loaded from the Hub ({HUB_REPO}: {reason}). Point at a "
        "local copy of TurkishMMLU's repository (dev/ and test/ folders) instead, with the "
        f"environment variable {ENV_DIR}=DIR or "
        f'lm_eval --metadata \'{{"{METADATA_DIR}": "DIR"}}\'.'
    )


@functools.cache
def _load(root: Path | None, subject: str) -> datasets.DatasetDict:
    if root is not None:
        return _from_dir(root, subject)
    try:
        return _from_hub(subject)
    except TurkishMMLUDataError:
        raise
    except Exception as err:
        raise TurkishMMLUDataError(
            f"subject {subject!r}: " + no_source_message(f"{type(err).__name__}: {err}")
        ) from err


def load_subject(turkishmmlu_subject: str, **metadata: Any) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: the test and dev splits of one subject.

    lm-eval passes the task's metadata (``--metadata`` and the model args) as
    keyword arguments; only ``turkishmmlu_dir`` is read here.
    """
    if turkishmmlu_subject not in SUBJECTS:
        raise TurkishMMLUDataError(
            f"unknown TurkishMMLU subject {turkishmmlu_subject!r}; known: {', '.join(SUBJECTS)}"
        )
    return _load(data_dir(metadata), turkishmmlu_subject)


def availability(env: Mapping[str, str] | None = None) -> str | None:
    """Why TurkishMMLU cannot be loaded with ``env``'s settings (a local directory from
    ``LANGADAPT_TURKISHMMLU_DIR``, else the Hub), or None when it can."""
    env = os.environ if env is None else env
    value = env.get(ENV_DIR)
    if value:
        if Path(value).expanduser().is_dir():
            return None
        return f"{ENV_DIR}={value}: no such directory"
    if offline(env):
        return f"no local copy ({ENV_DIR} is not set) and the Hub is off (HF_HUB_OFFLINE)"
    problem = hub_problem()
    if problem is None:
        return None
    return f"no local copy ({ENV_DIR} is not set) and {HUB_REPO} unreachable ({problem})"
