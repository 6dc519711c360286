"""The judge rubrics: one ``Rubric`` record each, and the only place their names are spelled.

A rubric is a record, as FastChat's judge prompts are (``judge_prompts.jsonl``: each
prompt carries its ``type``, ``single`` or ``pairwise``, and its ``output_format``):
its scale, its request defaults, whether its answers are fenced, the categories it
grades against reference answers, how a reply is read, and where its prompts come
from. Everything else asks the record (``judge.settings.JudgeSettings`` resolves the
configured name to it once) instead of comparing names; a new rubric is a new record.

This module sits with the language specs, below the judge (docs/architecture.md),
because a spec's judge files are checked against it when the spec is loaded. It
imports nothing of the project and no third-party library.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Kind = Literal["single", "pairwise"]
# Where a rubric's prompts come from: the language spec's field that names them.
# "judge_templates": the jinja2 file the spec names under ``judge_templates.<rubric>``;
# "judge_prompts": FastChat's own prompts, the spec's FastChat ``judge_prompts.jsonl``.
Source = Literal["judge_templates", "judge_prompts"]
KINDS: tuple[str, ...] = ("single", "pairwise")
SOURCES: tuple[str, ...] = ("judge_templates", "judge_prompts")

# FastChat grades these categories against a reference answer (``NEED_REF_CATS``).
REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding"})
# FastChat's ``one_score_pattern`` and ``one_score_pattern_backup``, verbatim.
FASTCHAT_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
FASTCHAT_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
_DOUBLE = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_SINGLE = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")
# "4", or the score label of the prompt's own layout and the number ("Score: 4", "评分：4").
_BARE = re.compile(r"(?:(?:Score|评分|Puan)\s*[:：]\s*)?(\d+)")
FASTCHAT_REASK = (
    'Your reply could not be parsed. End your reply with the rating in the format "[[rating]]", '
    'for example: "Rating: [[5]]".'
)
FASTCHAT_PAIR_REASK = (
    "Your reply could not be parsed. End your reply with your final verdict in the format "
    '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
MULTI_TURN = "-multi-turn"  # FastChat's name of a prompt's turn-2 variant
# A pairwise verdict as a number (what the cache and the verdict rows keep): the answer shown
# first (A) is better, the one shown second (B), or a tie (FastChat's "[[C]]").
PAIR_A, PAIR_B, PAIR_TIE = 1.0, 2.0, 3.0
PAIR_WINNERS = {PAIR_A: "A", PAIR_B: "B", PAIR_TIE: "tie"}


# --- reply parsers: the judge's reply (echo already removed) -> score, None: no verdict ---


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


def one_rating(reply: str) -> float | None:
    """Exactly one rating value: the ``[[n]]`` ones, else the ``[n]`` ones."""
    values = {float(v) for v in _DOUBLE.findall(reply)}
    values = values or {float(v) for v in _SINGLE.findall(reply)}
    if len(values) != 1:  # none, or contradictory ratings
        return None
    (value,) = values
    return value


def fastchat_pair_verdict(reply: str) -> float | None:
    """FastChat's ``run_judge_pair`` parsing: ``[[A]]``, else ``[[B]]``, else ``[[C]]`` (a
    tie); None where FastChat records "error" (never a tie)."""
    for mark, value in (("[[A]]", PAIR_A), ("[[B]]", PAIR_B), ("[[C]]", PAIR_TIE)):
        if mark in reply:
            return value
    return None


def bare_score(reply: str) -> float | None:
    """A bare whole number, optionally after the layout's ``Score:`` (``评分：``, ``Puan:``)."""
    match = _BARE.fullmatch(reply.strip())
    return None if match is None else float(match.group(1))


# --- the record -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rubric:
    """One judge rubric (docs/mtbench.md, *Rubrics*)."""

    name: str
    description: str
    kind: Kind  # FastChat's ``type``: one answer rated, or two compared
    scale: tuple[int, int]  # the scores a verdict can have (low, high), as reports show them
    temperature: float  # request defaults (``judge_temperature`` / ``judge_max_tokens`` win)
    max_tokens: int
    source: Source  # where its prompts come from (see ``Source``)
    output_format: str  # what the prompt asks the reply to hold (FastChat's ``output_format``)
    reply: Callable[[str], float | None]  # the reply parser
    guarded: bool = False  # answers fenced; an answer's echo is removed before parsing
    # A parsed score outside ``scale`` is no verdict (False: kept, as FastChat keeps it).
    within_scale: bool = True
    reference_categories: frozenset[str] = frozenset()  # graded against reference answers
    # source "judge_prompts": FastChat's prompt names (general, with references); turn 2
    # adds MULTI_TURN. Source "judge_templates": None.
    fastchat_prompts: tuple[str, str] | None = None
    reask: str | None = None  # the follow-up to an unparsable reply; None: the template's
    hardens: str | None = None  # the rubric whose prompt this one fences (guarded only)

    def __post_init__(self) -> None:
        low, high = self.scale
        if self.kind not in KINDS or self.source not in SOURCES or not low < high:
            raise ValueError(f"rubric {self.name!r}: bad kind, source or scale")
        fastchat = self.source == "judge_prompts"
        if fastchat != (self.fastchat_prompts is not None):
            raise ValueError(f"rubric {self.name!r}: fastchat_prompts go with judge_prompts")
        if fastchat and self.reask is None:
            raise ValueError(f"rubric {self.name!r}: a FastChat-prompt rubric needs its reask")

    @property
    def scale_text(self) -> str:
        low, high = self.scale
        return f"{low:g}–{high:g}"

    def request_defaults(self) -> dict[str, float | int]:
        """``temperature`` and ``max_tokens`` of the rubric's reference (docs/mtbench.md)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    def uses_reference(self, category: str, turn: int, references: int) -> bool:
        """Whether an answer of ``category`` at ``turn`` is graded against its references
        (FastChat: math, reasoning and coding, when the question has them)."""
        return category in self.reference_categories and references >= turn

    def fastchat_prompt(self, reference: bool, turn: int) -> str:
        """The FastChat prompt name for an answer (source "judge_prompts")."""
        if self.fastchat_prompts is None:
            raise ValueError(f"rubric {self.name!r} does not use FastChat's prompt files")
        return self.fastchat_prompts[1 if reference else 0] + (MULTI_TURN if turn == 2 else "")

    def fastchat_prompt_names(self) -> tuple[str, ...]:
        """Every FastChat prompt this rubric may send (none for templates)."""
        if self.fastchat_prompts is None:
            return ()
        return (*self.fastchat_prompts, *(p + MULTI_TURN for p in self.fastchat_prompts))

    def read(self, reply: str) -> float | None:
        """The score in ``reply`` (an answer's echo already removed), None: no verdict."""
        value = self.reply(reply)
        if value is None:
            return None
        low, high = self.scale
        return value if not self.within_scale or low <= value <= high else None


# --- the rubrics --------------------------------------------------------------------------

# FastChat's ``chat_compeletion_openai(..., temperature=0, max_tokens=2048)``. The study
# prints neither: a bare number needs a few tokens; longer replies are not a verdict.
# The study's prompt asks for 1–5 but its own negative example is scored 0: a 0 is a
# verdict, counted as 0 (docs/mtbench.md).
PAPER = Rubric(
    name="paper",
    description="the study's judge prompt (section 3.2.2) as printed",
    kind="single",
    scale=(0, 5),
    temperature=0.0,
    max_tokens=16,
    source="judge_templates",
    output_format="a bare whole number",
    reply=bare_score,
)
PAPER_GUARDED = Rubric(
    name="paper-guarded",
    description="langadapt's injection-hardened 1–5 prompt, answers fenced",
    kind="single",
    scale=(1, 5),
    temperature=0.0,
    max_tokens=16,
    source="judge_templates",
    output_format="a bare whole number",
    reply=bare_score,
    guarded=True,
    hardens=PAPER.name,
)
FASTCHAT = Rubric(
    name="fastchat",
    description="FastChat llm_judge's single-answer prompts, verbatim",
    kind="single",
    scale=(1, 10),
    temperature=0.0,
    max_tokens=2048,
    source="judge_prompts",
    output_format="[[rating]]",
    reply=fastchat_rating,
    within_scale=False,
    reference_categories=REFERENCE_CATEGORIES,
    fastchat_prompts=("single-v1", "single-math-v1"),
    reask=FASTCHAT_REASK,
)
FASTCHAT_GUARDED = Rubric(
    name="fastchat-guarded",
    description="FastChat's prompt as one user message, answers fenced",
    kind="single",
    scale=(1, 10),
    temperature=0.0,
    max_tokens=2048,
    source="judge_templates",
    output_format="[[rating]]",
    reply=one_rating,
    guarded=True,
    reference_categories=REFERENCE_CATEGORIES,
    hardens=FASTCHAT.name,
)

# FastChat's ``run_judge_pair``: pair-v2 (pair-math-v1 with the reference answer for math,
# reasoning and coding), temperature 0, max_tokens 2048; both orders judged
# (``judge.pairwise``). Its "scale" is the three verdicts' codes.
FASTCHAT_PAIR = Rubric(
    name="fastchat-pair",
    description="FastChat llm_judge's pairwise prompts, verbatim, both orders",
    kind="pairwise",
    scale=(1, 3),
    temperature=0.0,
    max_tokens=2048,
    source="judge_prompts",
    output_format="[[A]]",
    reply=fastchat_pair_verdict,
    reference_categories=REFERENCE_CATEGORIES,
    fastchat_prompts=("pair-v2", "pair-math-v1"),
    reask=FASTCHAT_PAIR_REASK,
)

# Name -> record, in the order they are listed to users.
RUBRICS: Mapping[str, Rubric] = MappingProxyType(
    {r.name: r for r in (PAPER, PAPER_GUARDED, FASTCHAT, FASTCHAT_GUARDED, FASTCHAT_PAIR)}
)
DEFAULT_RUBRIC = PAPER  # judge_rubric's default; the scale assumed where none is recorded
RUBRIC_NAMES: tuple[str, ...] = tuple(RUBRICS)


def from_source(source: Source) -> Iterator[Rubric]:
    """The rubrics whose prompts come from ``source``, in order."""
    return (r for r in RUBRICS.values() if r.source == source)


class UnknownRubricError(ValueError):
    """A rubric name that is not one of ``RUBRICS``."""


def rubric_named(name: str | Rubric, setting: str = "judge rubric") -> Rubric:
    """The record of ``name``; a Rubric is returned as it is.

    The one check of a rubric name: an unknown one raises UnknownRubricError naming
    ``setting`` (where the name was given) and listing the known rubrics.
    """
    if isinstance(name, Rubric):
        return name
    found = RUBRICS.get(name) if isinstance(name, str) else None
    if found is None:
        raise UnknownRubricError(f"{setting}: {name!r}: choose one of {', '.join(RUBRIC_NAMES)}")
    return found
