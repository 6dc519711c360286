"""lm-eval hooks of the ``cmmlu_langadapt*`` tasks (referenced by the task YAMLs).

The ``cmmlu_langadapt`` tasks follow CMMLU's own evaluation code
(``src/mp_utils.py`` and ``src/hf_causal_model.py`` in haonan-li/CMMLU): per
question, the longest shots are dropped while the prompt would pass 2048
tokens of the model's tokenizer. The loader counts those tokens
(``shot_tokens`` on the dev rows, ``shot_budget`` on the test rows) and
:class:`LongestShotDropping` applies the rule when lm-eval builds the prompt.
"""

from __future__ import annotations

import logging
from typing import Any

import datasets
from lm_eval.api.samplers import FirstNSampler
from lm_eval.api.task import ConfigurableTask

from langadapt_tasks.benchmarks.cmmlu import CHOICES, CMMLUDataError, load_subject
from langadapt_tasks.benchmarks.cmmlu_subjects import PROMPT_HEADER, SUBJECTS
from langadapt_tasks.benchmarks.mcdata import quiet_custom_dataset_hint
from langadapt_tasks.benchmarks.tokenizers import tokenizer_for

__all__ = [
    "CMMLUTask",
    "LongestShotDropping",
    "doc_to_target",
    "load_protocol_subject",
    "load_subject",
]

METADATA_TOKENIZER = "cmmlu_tokenizer"
METADATA_MAX_LENGTH = "cmmlu_max_length"
MAX_LENGTH = 2048  # CMMLU's --max_length default

_log = logging.getLogger(__name__)

quiet_custom_dataset_hint()  # lm-eval logs it once per subject: 67 identical lines


def load_protocol_subject(cmmlu_subject: str, **metadata: Any) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook for CMMLU's own protocol.

    As :func:`load_subject`, plus the token counts of CMMLU's
    shot-dropping rule, made with the tokenizer named by ``cmmlu_tokenizer``,
    else the model args' ``tokenizer`` or ``pretrained``. Without one (a model
    object handed to ``simple_evaluate``) no shot is dropped, as in CMMLU's
    code without a tokenizer, and a warning says so.
    """
    parts = load_subject(cmmlu_subject, **metadata)
    tokenizer = _tokenizer_for(metadata)
    max_length = _max_length(metadata)
    if tokenizer is None:
        _log.warning(
            "cmmlu_langadapt: no tokenizer in the model args (pretrained=/tokenizer=) or "
            "metadata %r: CMMLU's rule of dropping the longest shot past %d tokens is off",
            METADATA_TOKENIZER,
            max_length,
        )
    header = PROMPT_HEADER.format(subject=SUBJECTS[cmmlu_subject].name_zh)
    count = (lambda text: len(tokenizer.encode(text))) if tokenizer is not None else None
    dev = [{**row, "shot_tokens": count(shot_text(row)) if count else None} for row in parts["dev"]]
    test = [
        {
            **row,
            # gen_prompt: len(encode(header) + encode(question)) against max_length
            "shot_budget": max_length - count(header) - count(question_text(row))
            if count
            else None,
        }
        for row in parts["test"]
    ]
    return datasets.DatasetDict(
        {"test": datasets.Dataset.from_list(test), "dev": datasets.Dataset.from_list(dev)}
    )


def question_text(doc: dict[str, str]) -> str:
    """CMMLU's ``format_example`` without the answer (as ``doc_to_text`` renders it)."""
    options = "".join(f"\n{c}. {doc[c]}" for c in CHOICES)
    return f"题目：{doc['Question']}{options}\n答案是："


def shot_text(doc: dict[str, str]) -> str:
    """CMMLU's ``format_example`` with the answer: one shot, blank line included."""
    return f"{question_text(doc)}{doc['Answer']}\n\n"


def _max_length(metadata: dict[str, Any]) -> int:
    value = metadata.get(METADATA_MAX_LENGTH, MAX_LENGTH)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CMMLUDataError(
            f"metadata {METADATA_MAX_LENGTH}={value!r}: expected a positive number of tokens"
        )
    return value


def _tokenizer_for(metadata: dict[str, Any]) -> Any:
    try:
        return tokenizer_for(metadata, METADATA_TOKENIZER)
    except OSError as err:
        raise CMMLUDataError(
            f"cmmlu_langadapt counts prompt tokens as CMMLU's code does, with the model's "
            f"tokenizer, but {err}. "
            f'Name one with lm_eval --metadata \'{{"{METADATA_TOKENIZER}": "NAME_OR_DIR"}}\'.'
        ) from err


def drop_longest_shots(shots: list[dict[str, Any]], budget: int | None) -> list[dict[str, Any]]:
    """CMMLU's ``gen_prompt`` rule: while the shots' tokens reach the budget, drop the
    longest (every shot of that length). A negative budget keeps the question alone."""
    if budget is None:
        return shots
    if budget < 0:
        return []
    while shots and sum(s["shot_tokens"] for s in shots) >= budget:
        longest = max(s["shot_tokens"] for s in shots)
        shots = [s for s in shots if s["shot_tokens"] != longest]
    return shots


class LongestShotDropping(FirstNSampler):
    """The first ``n`` dev rows, less those CMMLU's rule drops for the current question."""

    budget: int | None = None  # set per question by CMMLUTask.fewshot_context

    def sample(self, n: int, eval_doc: Any = None, df: Any = None, **kwargs: Any) -> list:
        shots = list(super().sample(n, eval_doc=eval_doc, df=df, **kwargs))
        return drop_longest_shots(shots, self.budget)


class CMMLUTask(ConfigurableTask):
    """lm-eval's configurable task, handing each question's token budget to the sampler
    (lm-eval's samplers are not told which question the shots are for)."""

    def __init__(self, config: dict | None = None, **kwargs: Any) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(config=config, **kwargs)

    def fewshot_context(self, doc: dict, num_fewshot: int, **kwargs: Any) -> Any:
        if isinstance(getattr(self, "sampler", None), LongestShotDropping):
            self.sampler.budget = doc.get("shot_budget")
        return super().fewshot_context(doc=doc, num_fewshot=num_fewshot, **kwargs)


def doc_to_target(doc: dict[str, str]) -> int:
    return CHOICES.index(doc["Answer"])
