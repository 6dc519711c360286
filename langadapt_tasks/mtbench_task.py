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
from pathlib import Path
from typing import Any

import datasets
from lm_eval.api.samplers import ContextSampler

from langadapt_tasks import mtbench_data
from langadapt_tasks.fidelity import fidelity
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
from langadapt_tasks.judge.lmeval_paths import samples_dir
from langadapt_tasks.judge.rubrics import JudgeItem
from langadapt_tasks.judge.verdicts import group_name, item_from_doc, model_name
from langadapt_tasks.language_spec import builtin_specs, register

log = logging.getLogger(__name__)

# The study's system prompts, from the shipped language specs (languages/<code>.yaml).
SYSTEM_PROMPTS = {code: spec.system_prompt for code, spec in builtin_specs().items()}


class _RunState:
    """What one lm_eval process has recorded and judged so far."""

    def __init__(self) -> None:
        self.settings: judge_settings.JudgeSettings | None = None
        # lm-eval's name of the evaluated model (its model args reach the tasks' metadata).
        self.model: str = ""
        self.pending: dict[str, JudgeItem] = {}
        self.verdicts: dict[str, Verdict] = {}


STATE = _RunState()


def _settings() -> judge_settings.JudgeSettings:
    if STATE.settings is None:
        STATE.settings = judge_settings.resolve()
    return STATE.settings


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
    STATE.settings = settings
    # lm-eval passes --model_args into the task metadata (pretrained=, peft=...).
    STATE.model = model_name(metadata) or ""
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


def to_item(doc: dict[str, Any], answer: str) -> JudgeItem:
    """The judge item of an answer of the model this lm_eval run evaluates."""
    return item_from_doc(doc, answer, STATE.model)


def record_key(item: JudgeItem, settings: judge_settings.JudgeSettings) -> str:
    """Id of one recorded answer: unique per answer text and judge, not only per question,
    so several evaluations in one Python process never share verdicts."""
    digest = hashlib.sha256(
        json.dumps([settings.model, settings.rubric, item.answers], ensure_ascii=False).encode()
    ).hexdigest()[:16]
    return f"{item.id}#{digest}"


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """Record the answer for the judge; the judge metrics carry the record's key."""
    answer = results[0] if results else ""
    item = to_item(doc, answer)
    out: dict[str, Any] = {"lang_fidelity": fidelity(answer, item.lang)}
    settings = _settings()
    if settings.enabled:
        key = record_key(item, settings)
        STATE.pending[key] = item
        out["judge_score"] = key
        out["judge_unscored"] = key
    return out


def _output_dir(settings: judge_settings.JudgeSettings) -> Path | None:
    if settings.output_dir is not None:
        return settings.output_dir
    return samples_dir()


def judge_pending() -> None:
    """Judge every recorded answer that has no verdict yet; write the verdict JSONL."""
    todo = {key: item for key, item in STATE.pending.items() if key not in STATE.verdicts}
    if not todo:
        return
    settings = _settings()
    log.info("Judging %d MT-Bench answers with %s", len(todo), settings.describe())
    try:
        by_id = judge_items(todo.values(), settings)
        STATE.verdicts.update({key: by_id[item.id] for key, item in todo.items()})
    except JudgeStopped as err:  # a bad key or model: stop asking, keep what was settled
        log.error("%s Judge the rest later with `langadapt judge <output dir>`.", err)
        reason = f"not judged: {err}"
        for key, item in todo.items():
            STATE.verdicts[key] = err.verdicts.get(item.id) or Verdict(item.id, None, error=reason)
    except Exception as err:  # keep the generations: lm-eval still writes the samples
        log.exception(
            "judging failed; the answers are counted as unscored and can be "
            "judged later with `langadapt judge <samples.jsonl>`"
        )
        reason = redact(f"{type(err).__name__}: {err}", settings.api_key)
        STATE.verdicts.update({k: Verdict(i.id, None, error=reason) for k, i in todo.items()})
    _report(list(todo.values()), by_id_of(todo), settings)


def by_id_of(records: dict[str, JudgeItem]) -> dict[str, Verdict]:
    return {item.id: STATE.verdicts[key] for key, item in records.items()}


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
    out_dir = _output_dir(settings)
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
    judge_pending()
    scores = [v.score for k in keys if (v := STATE.verdicts.get(k)) and v.score is not None]
    return sum(scores) / len(scores) if scores else math.nan


def count_unscored(keys: list[str]) -> int:
    """Aggregation of ``judge_unscored``: answers the judge could not score."""
    judge_pending()
    return sum(1 for k in keys if (v := STATE.verdicts.get(k)) is None or v.score is None)
