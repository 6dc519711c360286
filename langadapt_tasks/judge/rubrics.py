"""Judge prompts (jinja2 templates shipped in the package) and verdict parsing.

A language's spec names its template per rubric (the shipped ones are
``templates/judge/<rubric>_<lang>.j2``). It renders the judge's
user message from these variables:

``turn`` (1 or 2), ``questions`` (the question turns), ``answers`` (the
model's answers, one per turn so far), ``tags`` (one delimiter tag per
answer), ``reference`` (reference answers; empty unless the rubric uses them)
and ``category``. Each template also defines a ``reask()`` macro: the
follow-up sent when a reply cannot be parsed.

Each answer is fenced by ``<<<TAG>>>`` / ``<<<END-TAG>>>`` where TAG is derived
from a hash of the answer itself, so an answer cannot contain its own closing
marker, and the parser ignores any text of the answer that the judge echoes.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "judge"
SCALES = {"paper": (1, 5), "fastchat": (1, 10)}
# FastChat grades these categories against a reference answer.
REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding"})
_DOUBLE = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_SINGLE = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PAPER_MAX_REPLY = 24  # "评分：4", "Puan: 4", "4" — anything longer is not a bare score


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
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return f"{self.lang}/turn{self.turn}/{self.question_id}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeItem:
        return cls(
            lang=data["lang"],
            turn=int(data["turn"]),
            question_id=int(data["question_id"]),
            category=data["category"],
            questions=tuple(data["questions"]),
            answers=tuple(data["answers"]),
            reference=tuple(data.get("reference") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "turn": self.turn,
            "question_id": self.question_id,
            "category": self.category,
            "questions": list(self.questions),
            "answers": list(self.answers),
            "reference": list(self.reference),
        }


def answer_tag(answer: str) -> str:
    return "ANSWER-" + hashlib.sha256(answer.encode("utf-8")).hexdigest()[:16].upper()


@functools.cache
def _env(folder: Path) -> jinja2.Environment:
    # The language's own folder first; then the shipped templates, so that a
    # language's template can include the shared ones (``_fastchat.j2``).
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([folder, TEMPLATE_DIR]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # plain-text prompts, not HTML
    )


def template(rubric: str, lang: str) -> jinja2.Template:
    """The template named for ``rubric`` in the language's spec."""
    from langadapt_tasks.language_spec import LanguageSpecError, get

    try:
        path = get(lang).judge_templates.get(rubric)
    except LanguageSpecError as err:
        raise ValueError(f"no judge template for rubric {rubric!r}: {err}") from None
    if path is None:
        raise ValueError(
            f"no judge template for rubric {rubric!r} and language {lang!r} in its spec "
            f"({get(lang).path})"
        )
    return _env(path.parent).get_template(path.name)


def uses_reference(rubric: str, item: JudgeItem) -> bool:
    return rubric == "fastchat" and item.category in REFERENCE_CATEGORIES and bool(item.reference)


def build_messages(rubric: str, item: JudgeItem) -> list[dict[str, str]]:
    """The judge request for ``item`` under ``rubric`` (one user message)."""
    prompt = template(rubric, item.lang).render(
        turn=item.turn,
        questions=list(item.questions),
        answers=list(item.answers),
        tags=[answer_tag(a) for a in item.answers],
        reference=list(item.reference) if uses_reference(rubric, item) else [],
        category=item.category,
    )
    return [{"role": "user", "content": prompt.strip() + "\n"}]


def reask_message(rubric: str, lang: str) -> str:
    blank = {
        "turn": 1,
        "questions": ["", ""],
        "answers": ["", ""],
        "tags": ["", ""],
        "reference": [],
        "category": "",
    }
    module = template(rubric, lang).make_module(blank)
    return str(module.reask()).strip()  # type: ignore[attr-defined]


def _strip_echo(reply: str, item: JudgeItem) -> str:
    """Drop any answer text (and fenced blocks) the judge copied into its reply."""
    for answer in item.answers:
        tag = answer_tag(answer)
        reply = re.sub(rf"<<<{tag}>>>.*?(<<<END-{tag}>>>|$)", " ", reply, flags=re.DOTALL)
        if len(answer.strip()) >= 8:
            reply = reply.replace(answer.strip(), " ")
    return reply


def parse(rubric: str, reply: str, item: JudgeItem) -> float | None:
    """The score in ``reply``, or None when it holds no single valid score."""
    low, high = SCALES[rubric]
    text = _strip_echo(reply, item).strip()
    if rubric == "paper":
        numbers = _NUMBER.findall(text)
        if len(text) > _PAPER_MAX_REPLY or len(numbers) != 1:
            return None
        values = {float(numbers[0])}
    else:
        values = {float(v) for v in _DOUBLE.findall(text)} or {
            float(v) for v in _SINGLE.findall(text)
        }
        if len(values) != 1:  # none, or contradictory ratings
            return None
    (value,) = values
    if not low <= value <= high or (rubric == "paper" and value != int(value)):
        return None
    return value
