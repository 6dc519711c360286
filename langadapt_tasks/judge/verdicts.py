"""Verdict files (``judge_<group>_<time>.jsonl``) and the answers they cover.

Importable without lm_eval or openai: the study and the report read verdicts
through ``read_verdict_rows`` and ``coverage``. A verdict row is identified by
its ``id``: the evaluated model (lm-eval's model name) and the language, turn
and question, so two models' verdicts never collide.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.mtbench import group_name, read_jsonl, sample_answer
from langadapt_tasks.files import iter_jsonl
from langadapt_tasks.judge.rubrics import JudgeItem

VERDICT_GLOB = "judge_mtbench_langadapt_*.jsonl"
SAMPLES_GLOB = "samples_mtbench_langadapt_*.jsonl"
RESULTS_GLOB = "results_*.json"
# lm-eval's order (GeneralConfigTracker._get_model_name): an adapter names the model
# before the base model it is applied to.
MODEL_ARG_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")


def now() -> str:
    """The ``judged_at`` timestamp of a verdict row (UTC, ISO 8601, microseconds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


# --- model identity ---------------------------------------------------------------------


def model_name(model_args: str | dict[str, Any] | None) -> str | None:
    """The model's name from lm-eval model args, as lm-eval names its output folder."""
    if isinstance(model_args, dict):
        return next((str(model_args[k]) for k in MODEL_ARG_KEYS if model_args.get(k)), None)
    if isinstance(model_args, str):
        for key in MODEL_ARG_KEYS:
            if match := re.search(rf"(?:^|,)\s*{key}=([^,]*)", model_args):
                return match.group(1)
    return None


@dataclass(frozen=True)
class ModelIdentity:
    name: str  # lm-eval's model_name; the samples folder's name when no results file says
    model_args: str | None = None
    source: str = ""  # where it was read


def model_identity(folder: Path) -> ModelIdentity:
    """The model whose samples are in ``folder``: the newest ``results_*.json`` there
    (``model_name``, ``config.model_args``), else the folder's own name (lm-eval names
    it after the model)."""
    for path in sorted(folder.glob(RESULTS_GLOB), key=lambda p: p.name, reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        config = data.get("config") if isinstance(data.get("config"), dict) else {}
        args = config.get("model_args")
        args_text = None if args is None else (args if isinstance(args, str) else json.dumps(args))
        name = data.get("model_name") or model_name(args)
        if name:
            return ModelIdentity(str(name), args_text, str(path))
    return ModelIdentity(folder.resolve().name, None, str(folder))


# --- samples ----------------------------------------------------------------------------


def item_from_doc(doc: dict[str, Any], answer: str, model: str = "") -> JudgeItem:
    """The judge item of one MT-Bench document and the model's answer to its turn."""
    turn = int(doc["turn"])
    answers = (answer,) if turn == 1 else (doc["answer_1"], answer)
    return JudgeItem(
        lang=doc["lang"],
        turn=turn,
        question_id=int(doc["question_id"]),
        category=doc["category"],
        questions=tuple(doc["turns"]),
        answers=answers,
        reference=tuple(doc.get("reference") or ()),
        model=model,
    )


def samples_items(path: Path, model: str) -> list[JudgeItem]:
    """The judge items of one lm-eval samples file; a clear error for a foreign file."""
    items = []
    for where, sample in read_jsonl(path):
        doc, answer = sample.get("doc"), sample_answer(sample)
        if not isinstance(doc, dict) or "lang" not in doc or "turn" not in doc:
            raise ValueError(f"{where}: not a sample of an mtbench_langadapt task")
        if answer is None:
            raise ValueError(f"{where}: no generated answer (resps) in the sample")
        items.append(item_from_doc(doc, answer, model))
    return items


# --- verdict rows -----------------------------------------------------------------------


def _rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    for lineno, row in iter_jsonl(path, ValueError):
        if not isinstance(row.get("id"), str):
            raise ValueError(f"{path}, line {lineno}: not a verdict row (no 'id')")
        yield lineno, row


def read_verdict_rows(files: Iterable[Path]) -> dict[str, dict]:
    """Verdict rows by item id; for one id the row judged last (``judged_at``) wins,
    rows without a timestamp count as older, and ties go to the later file and line."""
    best: dict[str, tuple[tuple[str, int, int], dict]] = {}
    for order, path in enumerate(files):
        for lineno, row in _rows(Path(path)):
            rank = (str(row.get("judged_at") or ""), order, lineno)
            current = best.get(row["id"])
            if current is None or rank >= current[0]:
                best[row["id"]] = (rank, row)
    return {key: row for key, (_, row) in best.items()}


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write a verdict file atomically (a killed run leaves no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def is_scored(row: dict[str, Any] | None) -> bool:
    return row is not None and row.get("score") is not None and not row.get("unscored")


# --- coverage ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    answers: int  # answers in the samples files
    scored: int  # with a scored verdict for that very answer
    unscored: int  # with a verdict row that holds no score
    missing: int  # with no verdict row (or only one for another answer text)

    @property
    def complete(self) -> bool:
        return self.answers > 0 and self.scored == self.answers


def coverage(run_dir: Path) -> dict[str, Coverage]:
    """Per lm-eval group (``mtbench_langadapt_zh``, ``mtbench_langadapt_zh_mt``): the
    answers in the samples under ``run_dir`` against the verdict rows under it.

    A verdict counts only for the answer it judged (same model, question and answer
    text): a verdict of an earlier generation does not cover a new one.
    """
    run_dir = Path(run_dir)
    answers: dict[str, JudgeItem] = {}
    for path in sorted(run_dir.rglob(SAMPLES_GLOB)):
        model = model_identity(path.parent).name
        for item in samples_items(path, model):
            answers[item.id] = item  # a later file (same name order as lm-eval's stamps) wins
    rows = read_verdict_rows(sorted(run_dir.rglob(VERDICT_GLOB)))
    counts: dict[str, list[int]] = {}
    for item in answers.values():
        entry = counts.setdefault(group_name(item.lang, item.turn), [0, 0, 0, 0])
        entry[0] += 1
        row = rows.get(item.id)
        if row is None or list(row.get("answers") or []) != list(item.answers):
            entry[3] += 1
        elif is_scored(row):
            entry[1] += 1
        else:
            entry[2] += 1
    return {group: Coverage(*entry) for group, entry in sorted(counts.items())}
