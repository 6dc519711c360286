"""One data layer for the multiple-choice benchmarks with a subject table (CMMLU, TurkishMMLU).

Each benchmark's ``data`` module keeps what is its own, the reader of its local files
and the check of its rows, and describes itself by one :class:`Benchmark` entry. The
rest is shared here, by the same rules for every benchmark:

1. a local directory, from ``--metadata '{"<key>": "DIR"}'`` (or ``metadata=`` in the
   TaskManager), else the benchmark's environment variable; it holds
   ``dev/<file>`` and ``test/<file>`` per subject;
2. else the Hugging Face Hub, asked first for the dataset's metadata (a quick
   request: loading would retry for half a minute on a machine without network).

A missing file, an unloadable Hub dataset and a malformed row are each an error of the
benchmark's own class, naming the file (or Hub source) and row, and, when nothing could
be loaded, both local options.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import HfApi

from langadapt_tasks.paths import local_dir, offline

SPLITS = ("test", "dev")

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Benchmark:
    """What tells one multiple-choice benchmark's data apart from another's."""

    name: str  # in messages: "CMMLU"
    env_dir: str  # the environment variable of a local copy: "LANGADAPT_CMMLU_DIR"
    metadata_dir: str  # the lm-eval metadata key of a local copy: "cmmlu_dir"
    hub_repo: str  # the Hub dataset: "haonan-li/cmmlu"
    subjects: Mapping[str, Any]  # the subject table: lm-eval subject name -> entry
    file_name: Callable[[str, str], str]  # (subject, split) -> its file under <split>/
    read_file: Callable[[Path], Rows]  # one local file, every row checked
    # subject -> split -> (where the rows come from, for errors; the rows as the Hub has them)
    hub_rows: Callable[[str], Mapping[str, tuple[str, Iterable[Any]]]]
    validate_row: Callable[[Any, str], dict[str, Any]]  # (row, where) -> the row, checked
    row_label: str  # how an error names a Hub row: "row" (row 3), "question index"
    error: type[ValueError]
    layout: str  # what a local directory holds, e.g. "dev/<subject>.csv and test/<subject>.csv"
    local_copy: str  # what to point at instead of the Hub, e.g. "CMMLU's data/ directory"

    def known(self, subject: str) -> str:
        """``subject``, or an error listing the benchmark's subjects."""
        if subject not in self.subjects:
            raise self.error(
                f"unknown {self.name} subject {subject!r}; known: {', '.join(self.subjects)}"
            )
        return subject

    def data_dir(self, metadata: dict[str, Any] | None = None) -> Path | None:
        """The local directory chosen by task metadata or environment, if any."""
        return local_dir(metadata, self.metadata_dir, self.env_dir, self.error)

    def subject_files(self, root: Path, subject: str) -> dict[str, Path]:
        """split -> the subject's file in the local directory ``root``."""
        return {split: root / split / self.file_name(subject, split) for split in SPLITS}

    def from_dir(self, root: Path, subject: str) -> datasets.DatasetDict:
        """The subject's splits from the local directory ``root``."""
        parts = {}
        for split, path in self.subject_files(root, subject).items():
            if not path.is_file():
                raise self.error(
                    f"{path} not found: the {self.name} directory {root} must hold {self.layout}"
                )
            parts[split] = datasets.Dataset.from_list(self.read_file(path))
        return datasets.DatasetDict(parts)

    def from_hub(self, subject: str) -> datasets.DatasetDict:
        """The subject's splits from the Hub, every row checked."""
        if not offline() and (problem := hub_problem(self.hub_repo)) is not None:
            raise ConnectionError(problem)
        parts = {}
        for split, (where, rows) in self.hub_rows(subject).items():
            checked = [
                self.validate_row(r, f"{where}, {self.row_label} {i}") for i, r in enumerate(rows)
            ]
            parts[split] = datasets.Dataset.from_list(checked)
        return datasets.DatasetDict(parts)

    def load(self, root: Path | None, subject: str) -> datasets.DatasetDict:
        """The subject from ``root``, else from the Hub; an error names both local options
        when the Hub cannot serve it."""
        if root is not None:
            return self.from_dir(root, subject)
        try:
            return self.from_hub(subject)
        except self.error:
            raise  # a malformed row: its own message
        except Exception as err:  # offline, gated, renamed: all end the same way
            raise self.error(
                f"{self.name} subject {subject!r} could not be loaded from the Hub "
                f"({self.hub_repo}: {type(err).__name__}: {err}). Point at a local copy of "
                f"{self.local_copy} instead, with the environment variable {self.env_dir}=DIR "
                f'or lm_eval --metadata \'{{"{self.metadata_dir}": "DIR"}}\'.'
            ) from err

    def availability(self, env: Mapping[str, str] | None = None) -> str | None:
        """Why the benchmark cannot be loaded with ``env``'s settings (default: this
        process's): a local directory from its variable, else the Hub; None when it can."""
        env = os.environ if env is None else env
        value = env.get(self.env_dir)
        if value:
            ok = Path(value).expanduser().is_dir()
            return None if ok else f"{self.env_dir}={value}: no such directory"
        local = f"no local copy ({self.env_dir} is not set)"
        if offline(env):
            return f"{local} and the Hub is off (HF_HUB_OFFLINE)"
        problem = hub_problem(self.hub_repo)
        return None if problem is None else f"{local} and {self.hub_repo} unreachable ({problem})"


@functools.cache
def hub_problem(repo: str) -> str | None:
    """Why the Hub dataset ``repo`` cannot be reached, or None. A quick metadata request:
    loading would retry for half a minute before giving up on a machine without network."""
    try:
        HfApi().dataset_info(repo, timeout=10)
    except Exception as err:  # offline, gated, renamed: all end the same way
        return f"{type(err).__name__}: {err}"
    return None


class _QuietCustomDatasetHint(logging.Filter):
    """Drops lm-eval's hint about custom datasets, logged once per subject task."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed to `--metadata`" not in record.getMessage()


_QUIET = _QuietCustomDatasetHint()


def quiet_custom_dataset_hint() -> None:
    """Silence lm-eval's per-task hint about ``custom_dataset`` kwargs (the hooks modules
    call this: one identical line per subject otherwise). Idempotent."""
    logging.getLogger("lm_eval.api.task").addFilter(_QUIET)
