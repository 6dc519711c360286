"""Judge prompts and verdict parsing, one pair per rubric.

Rubrics (docs/mtbench.md lists every way each one differs from its source):

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

Everything but ``fastchat`` is a jinja2 template named by the language's spec
(``judge_templates``; the shipped ones are ``templates/judge/<rubric>_<lang>.j2``),
rendered in jinja2's sandbox from ``turn`` (1 or 2), ``questions``, ``answers``
(one per turn so far), ``tags`` (one fence tag per answer), ``reference``
(empty unless the rubric uses references) and ``category``. The template's output
is the user message; an optional ``system()`` macro is the system message, and a
``reask()`` macro is the follow-up sent when a reply cannot be parsed. Templates
are checked when a spec is loaded (``languages.judge_templates.check_template``).

Each answer of a guarded rubric is fenced by ``<<<TAG>>>`` / ``<<<END-TAG>>>``
where TAG is derived from a hash of the answer itself, so an answer cannot
contain its own closing marker.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from langadapt_tasks.languages import spec as language_spec
from langadapt_tasks.languages.fastchat_prompts import read_fastchat_prompts
from langadapt_tasks.languages.judge_templates import (
    GUARDED,
    answer_tag,
    load_template,
    reask_text,
    render_messages,
)
from langadapt_tasks.mtbench.data import data_dir
from langadapt_tasks.paths import home

RUBRICS: tuple[str, ...] = ("paper", "paper-guarded", "fastchat", "fastchat-guarded")
# The values ``parse`` can return. The study's prompt asks for 1–5 but its own
# negative example is scored 0: a 0 is a verdict, counted as 0 (docs/mtbench.md).
SCALES: dict[str, tuple[int, int]] = {
    "paper": (0, 5),
    "paper-guarded": (1, 5),
    "fastchat": (1, 10),
    "fastchat-guarded": (1, 10),
}
# FastChat's ``chat_compeletion_openai(..., temperature=0, max_tokens=2048)``. The study
# prints neither: a bare number needs a few tokens; longer replies are not a verdict.
_REQUEST = {
    "paper": {"temperature": 0.0, "max_tokens": 16},
    "paper-guarded": {"temperature": 0.0, "max_tokens": 16},
    "fastchat": {"temperature": 0.0, "max_tokens": 2048},
    "fastchat-guarded": {"temperature": 0.0, "max_tokens": 2048},
}
# FastChat grades these categories against a reference answer (``NEED_REF_CATS``).
REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding"})
# FastChat's ``one_score_pattern`` and ``one_score_pattern_backup``, verbatim.
FASTCHAT_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
FASTCHAT_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
FASTCHAT_REASK = (
    'Your reply could not be parsed. End your reply with the rating in the format "[[rating]]", '
    'for example: "Rating: [[5]]".'
)
_DOUBLE = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_SINGLE = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")
# "4", or the score label of the prompt's own layout and the number ("Score: 4", "评分：4").
_PAPER_REPLY = re.compile(r"(?:(?:Score|评分|Puan)\s*[:：]\s*)?(\d+)")


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

    @property
    def id(self) -> str:
        base = f"{self.lang}/turn{self.turn}/{self.question_id}"
        return f"{self.model}|{base}" if self.model else base

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "turn": self.turn,
            "question_id": self.question_id,
            "category": self.category,
            "questions": list(self.questions),
            "answers": list(self.answers),
            "reference": list(self.reference),
            "model": self.model,
        }


def template(rubric: str, lang: str) -> jinja2.Template:
    """The template named for ``rubric`` in the language's spec."""
    try:
        path = language_spec.get(lang).judge_templates.get(rubric)
    except language_spec.LanguageSpecError as err:
        raise ValueError(f"no judge template for rubric {rubric!r}: {err}") from None
    if path is None:
        raise ValueError(
            f"no judge template for rubric {rubric!r} and language {lang!r} in its spec "
            f"({language_spec.get(lang).path})"
        )
    return load_template(path)


def _context(item: JudgeItem, rubric: str) -> dict[str, Any]:
    return {
        "turn": item.turn,
        "questions": list(item.questions),
        "answers": list(item.answers),
        "tags": [answer_tag(a) for a in item.answers],
        "reference": list(item.reference) if uses_reference(rubric, item) else [],
        "category": item.category,
    }


# --- rubric "fastchat": FastChat's own prompt files -----------------------------------------


def fastchat_prompts_file(lang: str, metadata: dict[str, Any] | None = None) -> Path:
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
    raise ValueError(
        f"rubric 'fastchat' needs FastChat judge prompts; the spec of {lang!r} "
        f"({spec.path}) names none ('judge_prompts')"
    )


def _download(url: str, local: str | None) -> Path:
    """``url`` saved once under ``$LANGADAPT_HOME/judge_prompts/`` (atomic rename)."""
    name = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16] + "-" + url.rsplit("/", 1)[-1]
    target = home() / "judge_prompts" / name
    if target.is_file():
        return target
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
    except OSError as err:
        hint = f" (DIR/{local})" if local else ""
        raise ValueError(
            f"the FastChat judge prompts could not be downloaded from {url} ({err}). Point at "
            f"a local MT-Bench directory{hint} with LANGADAPT_MTBENCH_DIR=DIR or lm_eval "
            '--metadata \'{"mtbench_dir": "DIR"}\'.'
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_bytes(body)
    partial.replace(target)
    return target


def _fastchat_messages(item: JudgeItem) -> list[dict[str, str]]:
    """What FastChat's ``run_judge_single`` sends for this answer."""
    prompts = read_fastchat_prompts(fastchat_prompts_file(item.lang, item.meta))
    ref = uses_reference("fastchat", item)
    multi = item.turn == 2
    name = ("single-math-v1" if ref else "single-v1") + ("-multi-turn" if multi else "")
    prompt = prompts[name]
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
    # FastChat's ``Conversation.to_openai_api_messages``: system (when not empty), then user.
    system = prompt["system_prompt"]
    return [
        *([{"role": "system", "content": system}] if system else []),
        {"role": "user", "content": user},
    ]


def fastchat_rating(reply: str) -> float | None:
    """FastChat's ``[[rating]]`` parsing; None where FastChat records -1."""
    match = FASTCHAT_SCORE.search(reply) or FASTCHAT_SCORE_BACKUP.search(reply)
    if not match:
        return None
    try:
        value = ast.literal_eval(match.groups()[0])
    except (ValueError, SyntaxError):  # "07": FastChat's own call raises here
        return None
    return float(value)


# --- the rubric interface ------------------------------------------------------------------


def check_rubric(rubric: str) -> None:
    if rubric not in RUBRICS:
        raise ValueError(f"judge rubric {rubric!r}: choose one of {', '.join(RUBRICS)}")


def request_defaults(rubric: str) -> dict[str, Any]:
    """``temperature`` and ``max_tokens`` of the rubric's reference (see docs/mtbench.md)."""
    check_rubric(rubric)
    return dict(_REQUEST[rubric])


def uses_reference(rubric: str, item: JudgeItem) -> bool:
    """FastChat grades math, reasoning and coding against the reference answer(s)."""
    return (
        rubric in ("fastchat", "fastchat-guarded")
        and item.category in REFERENCE_CATEGORIES
        and len(item.reference) >= item.turn
    )


def build_messages(rubric: str, item: JudgeItem) -> list[dict[str, str]]:
    """The judge request's chat messages for ``item`` under ``rubric``."""
    check_rubric(rubric)
    if rubric == "fastchat":
        return _fastchat_messages(item)
    return render_messages(template(rubric, item.lang), _context(item, rubric))


def reask_message(rubric: str, lang: str) -> str:
    """The follow-up sent when a reply has no valid score (langadapt's addition)."""
    check_rubric(rubric)
    if rubric == "fastchat":
        return FASTCHAT_REASK
    return reask_text(template(rubric, lang))


def _strip_echo(reply: str, item: JudgeItem) -> str:
    """Drop any answer text (and fenced blocks) the judge copied into its reply."""
    for answer in item.answers:
        tag = answer_tag(answer)
        reply = re.sub(rf"<<<{tag}>>>.*?(<<<END-{tag}>>>|$)", " ", reply, flags=re.DOTALL)
        if len(answer.strip()) >= 8:
            reply = reply.replace(answer.strip(), " ")
    return reply


def parse(rubric: str, reply: str, item: JudgeItem) -> float | None:
    """The score in ``reply``, or None when it holds no valid score.

    ``fastchat``: FastChat's parsing (the first ``[[n]]``, else the first ``[n]``, any
    value). ``paper``: a bare whole number 0–5 (optionally after the layout's
    ``Score:``); 0 is a verdict. Guarded rubrics: the answer's echo is removed first;
    ``fastchat-guarded`` needs one rating within 1–10, ``paper-guarded`` a bare 1–5.
    """
    check_rubric(rubric)
    if rubric == "fastchat":
        return fastchat_rating(reply)
    low, high = SCALES[rubric]
    text = _strip_echo(reply, item) if rubric in GUARDED else reply
    text = text.strip()
    if rubric.startswith("paper"):
        match = _PAPER_REPLY.fullmatch(text)
        if match is None:
            return None
        value = float(match.group(1))
    else:
        values = {float(v) for v in _DOUBLE.findall(text)} or {
            float(v) for v in _SINGLE.findall(text)
        }
        if len(values) != 1:  # none, or contradictory ratings
            return None
        (value,) = values
    return value if low <= value <= high else None
