"""The evaluation questions a training set must not contain (for decontamination).

``langadapt-train`` calls :func:`evaluation_questions`; where the data comes from is
decided here, by the same rules as the tasks (local directory, environment, Hub,
shipped files), so the trainer knows neither the variables nor the file formats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from langadapt_tasks.benchmarks import cmmlu as cmmlu_data
from langadapt_tasks.benchmarks import mtbench as mtbench_data
from langadapt_tasks.benchmarks import turkishmmlu as turkishmmlu_data
from langadapt_tasks.benchmarks.cmmlu_subjects import SUBJECTS
from langadapt_tasks.benchmarks.turkishmmlu_subjects import SUBJECTS as TURKISHMMLU_SUBJECTS
from langadapt_tasks.languages import spec as language_spec

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalQuestion:
    # e.g. "cmmlu:agronomy/test#3", "turkishmmlu:biology/dev#0" or "mt_bench:zh#81.1"
    # (question 81, turn 1)
    source: str
    text: str


def _cmmlu_text(row: dict[str, str]) -> str:
    return " ".join([row["Question"], *(row[c] for c in cmmlu_data.CHOICES)])


def cmmlu_questions(cmmlu_dir: str | Path | None = None) -> Iterator[EvalQuestion]:
    """Every CMMLU question with its options: every ``dev``/``test`` CSV of the local
    directory (``cmmlu_dir``, else ``LANGADAPT_CMMLU_DIR``), else every subject from the Hub."""
    root = cmmlu_data.data_dir({cmmlu_data.METADATA_DIR: str(cmmlu_dir)} if cmmlu_dir else None)
    if root is None:
        for subject in SUBJECTS:
            for split, rows in cmmlu_data.load_subject(subject).items():
                for i, row in enumerate(rows):
                    yield EvalQuestion(f"cmmlu:{subject}/{split}#{i}", _cmmlu_text(row))
        return
    files = sorted(p for split in cmmlu_data.SPLITS for p in (root / split).glob("*.csv"))
    if not files:
        raise cmmlu_data.CMMLUDataError(
            f"no CMMLU CSV files under {root} (expected dev/*.csv and test/*.csv)"
        )
    for path in files:
        for i, row in enumerate(cmmlu_data.read_csv(path)):
            yield EvalQuestion(f"cmmlu:{path.stem}/{path.parent.name}#{i}", _cmmlu_text(row))


def turkishmmlu_available(turkishmmlu_dir: str | Path | None = None) -> str | None:
    """Why TurkishMMLU cannot be read (no local directory and no Hub), or None."""
    if turkishmmlu_dir or turkishmmlu_data.data_dir() is not None:
        return None  # a local directory: reading it reports what is wrong
    return turkishmmlu_data.availability()


def turkishmmlu_questions(turkishmmlu_dir: str | Path | None = None) -> Iterator[EvalQuestion]:
    """Every TurkishMMLU question with its five choices: every subject's ``dev`` and
    ``test`` file of the local directory (``turkishmmlu_dir``, else
    ``LANGADAPT_TURKISHMMLU_DIR``), else every subject from the Hub."""
    meta = {turkishmmlu_data.METADATA_DIR: str(turkishmmlu_dir)} if turkishmmlu_dir else None
    root = turkishmmlu_data.data_dir(meta)
    for subject in TURKISHMMLU_SUBJECTS:
        if root is None:
            parts = dict(turkishmmlu_data.load_subject(subject))
        else:
            files = turkishmmlu_data.subject_files(root, subject)
            parts = {split: turkishmmlu_data.read_json(path) for split, path in files.items()}
        for split, rows in parts.items():
            for i, row in enumerate(rows):
                text = " ".join([row["question"], *row["choices"]])
                yield EvalQuestion(f"turkishmmlu:{subject}/{split}#{i}", text)


def mtbench_questions(mtbench_dir: str | Path | None = None) -> Iterator[EvalQuestion]:
    """Every turn of every MT-Bench question: each language folder of the local directory
    (``mtbench_dir``, else ``LANGADAPT_MTBENCH_DIR``), then each shipped language not
    found there, loaded as its tasks load it (shipped file or Hub)."""
    meta = {mtbench_data.METADATA_DIR: str(mtbench_dir)} if mtbench_dir else None
    root = mtbench_data.data_dir(meta)
    done: set[str] = set()
    if root is not None:
        for path in sorted(root.glob("*/question.jsonl")):
            done.add(path.parent.name)
            yield from _turns(path.parent.name, mtbench_data.read_questions(path))
    for lang in mtbench_data.LANGS:
        if lang in done:
            continue
        try:
            questions = mtbench_data.load_questions(None, lang)
        except mtbench_data.MTBenchDataError as err:
            if not language_spec.get(lang).questions_url:
                raise
            # Downloaded files (English: FastChat's) may be out of reach: noted, not fatal.
            _log.warning("decontamination: MT-Bench %s not checked (%s)", lang, err)
            continue
        yield from _turns(lang, questions)


def _turns(lang: str, questions: Iterable[dict]) -> Iterator[EvalQuestion]:
    for q in questions:
        for number, turn in enumerate(q["turns"], 1):
            yield EvalQuestion(f"mt_bench:{lang}#{q['question_id']}.{number}", turn)
