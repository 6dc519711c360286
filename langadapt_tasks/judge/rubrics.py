"""Judge prompts and verdict parsing, as each rubric's record says.

A rubric is a ``Rubric`` record (``languages.rubric_registry``, re-exported here): its
scale, request defaults, fence, reference categories, reply parser and prompt source.
The functions below take a record (or a rubric's name, looked up there) and ask it;
they never compare names. The rubrics (docs/mtbench.md lists every way each one
differs from its source):

``fastchat``
    FastChat llm_judge's single-answer prompts exactly (``run_judge_single``): the
    prompt's ``system_prompt`` as a system message, its ``prompt_template`` filled in
    with ``str.format`` as the user message, read from a FastChat-format
    ``judge_prompts.jsonl`` named by the language's spec (``judge_prompts``): the
    MT-Bench directory's copy when one is configured, else the spec's file or its
    public source (``url``, downloaded once). Parsed as FastChat does.
``paper``
    The study's judge prompt (system message: its instruction and two examples;
    user message: the question and answer in the examples' layout). A bare number.
``fastchat-guarded``, ``paper-guarded``
    langadapt's injection-hardened prompts: the answers are fenced and the parser
    ignores anything of the answer the judge echoes.

A rubric of source ``judge_templates`` (all but ``fastchat``) is a jinja2 template named by
the language's spec (``judge_templates``; the shipped ones are
``templates/judge/<rubric>_<lang>.j2``), rendered in jinja2's sandbox from ``turn``
(1 or 2), ``questions``, ``answers`` (one per turn so far), ``tags`` (one fence tag per
answer), ``reference`` (empty unless the rubric grades the category against
references) and ``category``. The template's output is the user message; an optional
``system()`` macro is the system message, and a ``reask()`` macro is the follow-up
sent when a reply cannot be parsed. Templates are checked when a spec is loaded
(``languages.judge_templates.check_template``).

Each answer of a guarded rubric is fenced by ``<<<TAG>>>`` / ``<<<END-TAG>>>``
where TAG is derived from a hash of the answer itself, so an answer cannot
contain its own closing marker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jinja2

from langadapt_tasks.benchmarks.mtbench import data_dir
from langadapt_tasks.languages import spec as language_spec
from langadapt_tasks.languages.fastchat_prompts import read_fastchat_prompts
from langadapt_tasks.languages.judge_templates import (
    answer_tag,
    load_template,
    reask_text,
    render_messages,
)
from langadapt_tasks.languages.rubric_registry import (
    DEFAULT_RUBRIC,
    REFERENCE_CATEGORIES,
    RUBRIC_NAMES,
    RUBRICS,
    Rubric,
    UnknownRubricError,
    fastchat_rating,
    rubric_named,
)
from langadapt_tasks.paths import download_once

__all__ = [
    "DEFAULT_RUBRIC",
    "REFERENCE_CATEGORIES",
    "RUBRICS",
    "RUBRIC_NAMES",
    "SCALES",
    "JudgeItem",
    "Rubric",
    "UnknownRubricError",
    "build_messages",
    "fastchat_prompts_file",
    "fastchat_rating",
    "parse",
    "reask_message",
    "request_defaults",
    "rubric_named",
    "template",
    "uses_reference",
]

# name -> (low, high): the values ``parse`` can return (each record's ``scale``).
SCALES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {name: r.scale for name, r in RUBRICS.items()}
)


@dataclass(frozen=True)
class JudgeItem:
    """One answer to judge: question turns, the model's answers, optional references."""

    lang: str
    turn: int
    question_id: int
    category: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    reference: tuple[str, ...] = ()
    # The evaluated model (lm-eval's model name, e.g. the ``pretrained=`` or ``peft=``
    # path); "" when unknown. Two models' answers to one question are two items.
    model: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # A pairwise rubric's item: the other model's answers to the same question and turn, and
    # which is shown first ("A"): this model's (``first``) or the other's.
    rival: tuple[str, ...] = ()
    rival_model: str = ""
    first: bool = True

    @property
    def id(self) -> str:
        base = f"{self.lang}/turn{self.turn}/{self.question_id}"
        if self.rival:
            order = "AB" if self.first else "BA"
            return f"{self.model}|vs|{self.rival_model}|{order}|{base}"
        return f"{self.model}|{base}" if self.model else base

    def to_dict(self) -> dict[str, Any]:
        out = {
            "lang": self.lang,
            "turn": self.turn,
            "question_id": self.question_id,
            "category": self.category,
            "questions": list(self.questions),
            "answers": list(self.answers),
            "reference": list(self.reference),
            "model": self.model,
        }
        if self.rival:
            out.update(against=self.rival_model, against_answers=list(self.rival))
        return out


def template(rubric: Rubric | str, lang: str) -> jinja2.Template:
    """The template named for ``rubric`` in the language's spec."""
    name = rubric_named(rubric).name
    try:
        path = language_spec.get(lang).judge_templates.get(name)
    except language_spec.LanguageSpecError as err:
        raise ValueError(f"no judge template for rubric {name!r}: {err}") from None
    if path is None:
        raise ValueError(
            f"no judge template for rubric {name!r} and language {lang!r} in its spec "
            f"({language_spec.get(lang).path})"
        )
    return load_template(path)


def _context(item: JudgeItem, rubric: Rubric) -> dict[str, Any]:
    return {
        "turn": item.turn,
        "questions": list(item.questions),
        "answers": list(item.answers),
        "tags": [answer_tag(a) for a in item.answers],
        "reference": list(item.reference) if uses_reference(rubric, item) else [],
        "category": item.category,
    }


# --- source "judge_prompts": FastChat's own prompt files -----------------------------------


def fastchat_prompts_file(
    lang: str, metadata: dict[str, Any] | None = None, rubric: Rubric | None = None
) -> Path:
    """The language's FastChat prompt file, in order: under the MT-Bench directory
    (``mtbench_dir`` metadata / LANGADAPT_MTBENCH_DIR), the spec's own file, the
    spec's public source (``url``, downloaded once into ``$LANGADAPT_HOME``)."""
    spec = language_spec.get(lang)
    root = data_dir(metadata)
    if root is not None and spec.judge_prompts_local:
        local = root / spec.judge_prompts_local
        if local.is_file():
            return local
    if spec.judge_prompts is not None:
        return spec.judge_prompts
    if spec.judge_prompts_url:
        return _download(spec.judge_prompts_url, spec.judge_prompts_local)
    needs = f"rubric {rubric.name!r}" if rubric else "a rubric of FastChat's prompts"
    raise ValueError(
        f"{needs} needs FastChat judge prompts; the spec of {lang!r} "
        f"({spec.path}) names none ('judge_prompts')"
    )


def _download(url: str, local: str | None) -> Path:
    """FastChat's judge prompts from ``url``, saved once under ``$LANGADAPT_HOME``."""
    where = f" (DIR/{local})" if local else ""
    return download_once(
        url,
        "judge_prompts",
        ValueError,
        f"The FastChat judge prompts are read from a local MT-Bench directory{where} instead: "
        'LANGADAPT_MTBENCH_DIR=DIR or lm_eval --metadata \'{"mtbench_dir": "DIR"}\'.',
    )


def _fastchat_pair_messages(rubric: Rubric, item: JudgeItem) -> list[dict[str, str]]:
    """What FastChat's ``run_judge_pair`` sends for this pair, in this order."""
    prompts = read_fastchat_prompts(fastchat_prompts_file(item.lang, item.meta, rubric))
    ref = uses_reference(rubric, item)
    prompt = prompts[rubric.fastchat_prompt(ref, item.turn)]
    a, b = (item.answers, item.rival) if item.first else (item.rival, item.answers)
    kwargs = {f"ref_answer_{i + 1}": r for i, r in enumerate(item.reference[:2])} if ref else {}
    if item.turn == 2:
        user = prompt["prompt_template"].format(
            question_1=item.questions[0],
            question_2=item.questions[1],
            answer_a_1=a[0],
            answer_b_1=b[0],
            answer_a_2=a[1],
            answer_b_2=b[1],
            **kwargs,
        )
    else:
        user = prompt["prompt_template"].format(
            question=item.questions[0], answer_a=a[0], answer_b=b[0], **kwargs
        )
    return _openai_messages(prompt["system_prompt"], user)


def _openai_messages(system: str, user: str) -> list[dict[str, str]]:
    """FastChat's ``Conversation.to_openai_api_messages``: system (when not empty), then user."""
    out = [{"role": "system", "content": system}] if system else []
    return [*out, {"role": "user", "content": user}]


def _fastchat_messages(rubric: Rubric, item: JudgeItem) -> list[dict[str, str]]:
    """What FastChat's ``run_judge_single`` sends for this answer."""
    prompts = read_fastchat_prompts(fastchat_prompts_file(item.lang, item.meta, rubric))
    ref = uses_reference(rubric, item)
    multi = item.turn == 2
    prompt = prompts[rubric.fastchat_prompt(ref, item.turn)]
    kwargs = {}
    if ref:
        kwargs = {f"ref_answer_{i + 1}": r for i, r in enumerate(item.reference[:2])}
    if multi:
        user = prompt["prompt_template"].format(
            question_1=item.questions[0],
            question_2=item.questions[1],
            answer_1=item.answers[0],
            answer_2=item.answers[1],
            **kwargs,
        )
    else:
        user = prompt["prompt_template"].format(
            question=item.questions[0], answer=item.answers[0], **kwargs
        )
    return _openai_messages(prompt["system_prompt"], user)


# --- the rubric interface: a record, or a rubric's name (looked up in the registry) ---------


def request_defaults(rubric: Rubric | str) -> dict[str, Any]:
    """``temperature`` and ``max_tokens`` of the rubric's reference (see docs/mtbench.md)."""
    return rubric_named(rubric).request_defaults()


def uses_reference(rubric: Rubric | str, item: JudgeItem) -> bool:
    """Whether the answer is graded against its reference answer(s): FastChat's
    rubrics do so for math, reasoning and coding."""
    return rubric_named(rubric).uses_reference(item.category, item.turn, len(item.reference))


def build_messages(rubric: Rubric | str, item: JudgeItem) -> list[dict[str, str]]:
    """The judge request's chat messages for ``item`` under ``rubric``."""
    record = rubric_named(rubric)
    if (record.kind == "pairwise") != bool(item.rival):
        raise ValueError(
            f"rubric {record.name!r} is {record.kind}: "
            + (
                "it compares two models' answers; judge them with `langadapt judge "
                "--rubric fastchat-pair --against BASELINE_SAMPLES ...`"
                if record.kind == "pairwise"
                else "a pair of answers needs a pairwise rubric (fastchat-pair)"
            )
        )
    if record.kind == "pairwise":
        return _fastchat_pair_messages(record, item)
    if record.source == "judge_prompts":
        return _fastchat_messages(record, item)
    return render_messages(template(record, item.lang), _context(item, record))


def reask_message(rubric: Rubric | str, lang: str) -> str:
    """The follow-up sent when a reply has no valid score (langadapt's addition)."""
    record = rubric_named(rubric)
    if record.reask is not None:
        return record.reask
    return reask_text(template(record, lang))


def _strip_echo(reply: str, item: JudgeItem) -> str:
    """Drop any answer text (and fenced blocks) the judge copied into its reply."""
    for answer in item.answers:
        tag = answer_tag(answer)
        reply = re.sub(rf"<<<{tag}>>>.*?(<<<END-{tag}>>>|$)", " ", reply, flags=re.DOTALL)
        if len(answer.strip()) >= 8:
            reply = reply.replace(answer.strip(), " ")
    return reply


def parse(rubric: Rubric | str, reply: str, item: JudgeItem) -> float | None:
    """The score in ``reply``, or None when it holds no valid score.

    The record's parser reads the reply: ``fastchat`` FastChat's (the first ``[[n]]``,
    else the first ``[n]``, any value); ``paper`` a bare whole number 0–5 (optionally
    after the layout's ``Score:``), 0 a verdict. Guarded rubrics: the answer's echo is
    removed first; ``fastchat-guarded`` needs one rating within 1–10, ``paper-guarded``
    a bare 1–5. A score outside the record's scale is no verdict unless the record
    keeps it (``within_scale``, False for FastChat's).
    """
    record = rubric_named(rubric)
    return record.read(_strip_echo(reply, item) if record.guarded else reply)
