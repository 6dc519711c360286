"""lm-eval hooks of the ``mtbench_langadapt_*`` tasks (referenced by the task YAMLs).

How judging fits lm-eval: ``process_results`` only records each answer (and
computes the judge-free language fidelity); the judge runs once, in the first
metric ``aggregation`` call, over every answer recorded in the run (all
languages and categories at once, so the calls run concurrently), and each
aggregation then reads its own verdicts. lm-eval calls every task's
``process_results`` before any aggregation, so nothing is missed.

The ``_mt`` (turn-2) tasks feed the model its own first answer: lm-eval builds
all prompts before generating, so the turn-1 answers come from the
``--log_samples`` output of a turn-1 run (``mtbench_turn1``). The first turn
is passed as a one-shot example drawn from the document itself, which lm-eval
renders as user/assistant messages under ``--apply_chat_template``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from typing import Any

import datasets
from lm_eval.api.samplers import ContextSampler

from langadapt_tasks.benchmarks import mtbench as mtbench_data
from langadapt_tasks.benchmarks.fidelity import fidelity
from langadapt_tasks.benchmarks.mtbench import group_name
from langadapt_tasks.judge import settings as judge_settings
from langadapt_tasks.judge.engine import (
    JudgeStopped,
    Verdict,
    judge_items,
    redact,
    summarize,
    verdict_rows,
    write_jsonl,
)
from langadapt_tasks.judge.rubrics import JudgeItem
from langadapt_tasks.judge.verdicts import item_from_doc, model_name
from langadapt_tasks.languages.spec import register
from langadapt_tasks.mtbench.output import samples_dir

log = logging.getLogger(__name__)


class JudgeRun:
    """The MT-Bench answers of one lm-eval evaluation and their verdicts.

    Life cycle: ``start`` when lm-eval builds the tasks (``load_docs``), ``record`` per
    answer (``process_results``), ``judge_pending`` at the first aggregation (judging
    every recorded answer at once), then ``verdicts_of`` per aggregation. Building tasks again after
    a judged run (a second ``simple_evaluate`` in one process) starts a new run.
    """

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.settings: judge_settings.JudgeSettings | None = None
        # lm-eval's name of the evaluated model (its model args reach the tasks' metadata).
        self.model: str = ""
        self.pending: dict[str, JudgeItem] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.judged = False

    def start(self, settings: judge_settings.JudgeSettings, model: str) -> None:
        if self.judged:  # a new evaluation in the same process
            self._clear()
        self.settings, self.model = settings, model

    def current_settings(self) -> judge_settings.JudgeSettings:
        if self.settings is None:
            self.settings = judge_settings.resolve()
        return self.settings

    def record(self, doc: dict[str, Any], answer: str) -> dict[str, Any]:
        """lm-eval's per-answer metrics; the judge metrics carry the record's key."""
        item = item_from_doc(doc, answer, self.model)
        out: dict[str, Any] = {"lang_fidelity": fidelity(answer, item.lang)}
        settings = self.current_settings()
        if settings.enabled:
            key = record_key(item, settings)
            self.pending[key] = item
            out["judge_score"] = key
            out["judge_unscored"] = key
        return out

    def verdicts_of(self, keys: list[str]) -> list[Verdict | None]:
        """The verdicts of ``keys`` (judging what is pending first)."""
        self.judge_pending()
        return [self.verdicts.get(k) for k in keys]

    def judge_pending(self) -> None:
        """Judge every recorded answer that has no verdict yet; write the verdict JSONL."""
        self.judged = True
        todo = {key: item for key, item in self.pending.items() if key not in self.verdicts}
        if not todo:
            return
        settings = self.current_settings()
        log.info("Judging %d MT-Bench answers with %s", len(todo), settings.describe())
        try:
            by_id = judge_items(todo.values(), settings)
            self.verdicts.update({key: by_id[item.id] for key, item in todo.items()})
        except JudgeStopped as err:  # a bad key or model: stop asking, keep what was settled
            log.error("%s Judge the rest later with `langadapt judge <output dir>`.", err)
            reason = f"not judged: {err}"
            for key, item in todo.items():
                self.verdicts[key] = err.verdicts.get(item.id) or Verdict(
                    item.id, None, error=reason
                )
        except Exception as err:  # keep the generations: lm-eval still writes the samples
            log.exception(
                "judging failed; the answers are counted as unscored and can be "
                "judged later with `langadapt judge <samples.jsonl>`"
            )
            reason = redact(f"{type(err).__name__}: {err}", settings.api_key)
            self.verdicts.update({k: Verdict(i.id, None, error=reason) for k, i in todo.items()})
        verdicts = {item.id: self.verdicts[key] for key, item in todo.items()}
        _report(list(todo.values()), verdicts, settings)


# The run of this lm_eval process (lm-eval calls the hooks as plain functions).
RUN = JudgeRun()


# --- data -------------------------------------------------------------------------------


def load_docs(
    mtbench_lang: str,
    mtbench_category: str,
    mtbench_turn: int = 1,
    mtbench_spec: str | None = None,
    **metadata: Any,
) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: one category of one language and turn.

    Runs when the task is built, before any generation, so a missing judge
    configuration or missing turn-1 answers stop the run here. ``mtbench_spec``:
    the spec file of a language of your own (generated YAMLs pass it).
    """
    if mtbench_spec:
        register(mtbench_spec)
    settings = judge_settings.resolve(metadata)
    judge_settings.require_configured(settings)
    if settings.enabled and settings.rubric_record.kind == "pairwise":
        raise judge_settings.JudgeConfigError(
            f"rubric {settings.rubric!r} compares two models' answers, and lm_eval runs one "
            'model: pass --metadata \'{"judge": "off"}\' (or another rubric) and compare the '
            "saved answers with `langadapt judge OUT --rubric fastchat-pair --against "
            "BASELINE_OUT`"
        )
    processes = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if settings.enabled and processes > 1:
        # Each process records only its share of the answers and lm-eval aggregates on the
        # first: judging there would leave the other processes' answers unjudged.
        raise judge_settings.JudgeConfigError(
            f"MT-Bench judges inside lm_eval in one process only, and this is one of {processes} "
            '(accelerate launch / torchrun). Pass --metadata \'{"judge": "off"}\' and judge '
            "the saved answers afterwards with `langadapt judge <output folder>` (the study "
            "does this by itself)."
        )
    # lm-eval passes --model_args into the task metadata (pretrained=, peft=...).
    RUN.start(settings, model_name(metadata) or "")
    questions = [
        q
        for q in mtbench_data.load_questions(mtbench_data.data_dir(metadata), mtbench_lang)
        if q["category"] == mtbench_category
    ]
    answers: dict[int, str] = {}
    if mtbench_turn == 2:
        source = mtbench_data.turn1_source(metadata)
        if source is None:
            raise mtbench_data.MTBenchDataError(
                f"{group_name(mtbench_lang, 2)} judges turn 2 and needs the model's own turn-1 "
                f"answers: run {group_name(mtbench_lang, 1)} with --log_samples --output_path "
                f'OUT first, then pass --metadata \'{{"{mtbench_data.METADATA_TURN1}": "OUT"}}\' '
                f"(or set {mtbench_data.ENV_TURN1}=OUT)."
            )
        answers = mtbench_data.turn1_answers(source, mtbench_lang)
        if not answers:
            raise mtbench_data.MTBenchDataError(
                f"{source}: no turn-1 samples of {group_name(mtbench_lang, 1)} found"
            )
        missing = [q["question_id"] for q in questions if q["question_id"] not in answers]
        if missing:
            log.warning(
                "%s/%s: no turn-1 answer for questions %s; they are skipped",
                group_name(mtbench_lang, 2),
                mtbench_category,
                missing,
            )
        questions = [q for q in questions if q["question_id"] in answers]
        if not questions:
            raise mtbench_data.MTBenchDataError(
                f"{source}: no turn-1 answers for category {mtbench_category!r}; run "
                f"{group_name(mtbench_lang, 1)}_{mtbench_category} first, or select only the "
                "categories that have turn-1 samples"
            )
    docs = [
        {
            "question_id": q["question_id"],
            "category": q["category"],
            "lang": mtbench_lang,
            "turn": mtbench_turn,
            "turns": q["turns"],
            "reference": q["reference"],
            "answer_1": answers.get(q["question_id"], ""),
            **({"spec": str(mtbench_spec)} if mtbench_spec else {}),
        }
        for q in questions
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["turns"][doc["turn"] - 1]


def doc_to_target(doc: dict[str, Any]) -> str:
    """The reference answer of the judged turn, when there is one (for the logs only)."""
    ref = doc.get("reference") or []
    return ref[doc["turn"] - 1] if len(ref) >= doc["turn"] else ""


def first_question(doc: dict[str, Any]) -> str:
    return doc["turns"][0]


def first_answer(doc: dict[str, Any]) -> str:
    return doc["answer_1"]


class OwnFirstTurn(ContextSampler):
    """The 'few-shot example' of a turn-2 document is its own first turn."""

    def sample(self, n: int, eval_doc: dict[str, Any] | None = None, **kwargs: Any) -> list:
        if eval_doc is None:
            raise ValueError("turn-2 MT-Bench tasks need fewshot_split == test_split")
        return [eval_doc] if n > 0 else []


# --- metrics ----------------------------------------------------------------------------


def record_key(item: JudgeItem, settings: judge_settings.JudgeSettings) -> str:
    """Id of one recorded answer: unique per answer text and judge, not only per question,
    so several evaluations in one Python process never share verdicts."""
    digest = hashlib.sha256(
        json.dumps([settings.model, settings.rubric, item.answers], ensure_ascii=False).encode()
    ).hexdigest()[:16]
    return f"{item.id}#{digest}"


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """Record the answer for the judge (``JudgeRun.record``)."""
    return RUN.record(doc, results[0] if results else "")


def _report(
    items: list[JudgeItem], verdicts: dict[str, Verdict], settings: judge_settings.JudgeSettings
) -> None:
    summary = summarize(items, verdicts)
    late = sum(1 for v in verdicts.values() if v.deadline_hit)
    if late:
        log.warning(
            "MT-Bench: %d answers hit the judge's %g s request deadline and are unscored "
            "(LANGADAPT_JUDGE_DEADLINE)",
            late,
            settings.deadline,
        )
    for task, entry in summary.items():
        if entry["unscored"]:
            log.warning(
                "MT-Bench %s: the judge could not score %d of %d answers",
                task,
                entry["unscored"],
                entry["n"],
            )
    out_dir = settings.output_dir or samples_dir()
    if out_dir is None:
        log.info("no --output_path: the judge verdicts are not written to a file")
        return
    stamp = dt.datetime.now().isoformat().replace(":", "-")
    groups: dict[tuple[str, int], list[JudgeItem]] = {}
    for item in items:
        groups.setdefault((item.lang, item.turn), []).append(item)
    for (lang, turn), group in groups.items():
        path = out_dir / f"judge_{group_name(lang, turn)}_{stamp}.jsonl"
        try:
            write_jsonl(path, verdict_rows(group, verdicts, settings))
        except OSError as err:  # the scores still reach lm-eval's results
            log.error("could not write the judge verdicts to %s: %s", path, err)
            continue
        log.info("MT-Bench judge verdicts written to %s", path)


def mean_judge_score(keys: list[str]) -> float:
    """Aggregation of ``judge_score``: mean over the scored answers (NaN if none)."""
    scores = [v.score for v in RUN.verdicts_of(keys) if v is not None and v.score is not None]
    return sum(scores) / len(scores) if scores else math.nan


def count_unscored(keys: list[str]) -> int:
    """Aggregation of ``judge_unscored``: answers the judge could not score."""
    return sum(1 for v in RUN.verdicts_of(keys) if v is None or v.score is None)
