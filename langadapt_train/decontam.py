"""Decontamination: drop training rows that share an n-gram with an evaluation question.

Text is normalised (NFKC, case-folded, punctuation and symbols removed) and
split into tokens: every CJK / kana / Hangul character is one token, any other
run of letters and digits is one token. An evaluation item contributes all its
n-grams (n = ``decontam_ngram``, 13 by default); an item shorter than n tokens
contributes itself whole. A training row is contaminated when any of its
n-grams (or, for short items, its token sequence containing the whole item)
matches. The evaluation sets are CMMLU (every subject, dev and test; question
with its options), MT-Bench (every turn, every shipped language) and TurkishMMLU
(every subject, dev and test; question with its choices), as
``langadapt_tasks.benchmarks.eval_questions`` provides them. TurkishMMLU is checked when its data
is available (a local directory, else the Hub); when it is not, the index says so in
``unavailable`` (and the log), and the rows are checked against the others.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

from langadapt_tasks.benchmarks.eval_questions import (
    EvalQuestion,
    cmmlu_questions,
    mtbench_questions,
    turkishmmlu_available,
    turkishmmlu_questions,
)

log = logging.getLogger(__name__)

_CJK = (
    r"\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    r"\uf900-\ufaff"
)
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


class DecontamError(ValueError):
    """The evaluation sets to decontaminate against could not be found."""


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize(text))


@dataclass
class Index:
    n: int
    grams: dict[tuple[str, ...], str] = field(default_factory=dict)
    short: dict[tuple[str, ...], str] = field(default_factory=dict)  # items shorter than n
    short_lengths: set[int] = field(default_factory=set)
    sources: dict[str, int] = field(default_factory=dict)  # eval set -> item count
    unavailable: dict[str, str] = field(default_factory=dict)  # eval set not checked -> why

    def add(self, item: EvalQuestion) -> None:
        toks = tokens(item.text)
        if not toks:
            return
        family = item.source.split("#")[0]
        family = family.split(":")[0] if family.startswith(("cmmlu:", "turkishmmlu:")) else family
        self.sources[family] = self.sources.get(family, 0) + 1
        if len(toks) < self.n:
            self.short.setdefault(tuple(toks), item.source)
            self.short_lengths.add(len(toks))
            return
        for i in range(len(toks) - self.n + 1):
            self.grams.setdefault(tuple(toks[i : i + self.n]), item.source)

    def match(self, text: str) -> tuple[str, str] | None:
        """(eval item, matched text) of the first overlap, or None."""
        toks = tokens(text)
        for i in range(len(toks) - self.n + 1):
            hit = self.grams.get(tuple(toks[i : i + self.n]))
            if hit:
                return hit, " ".join(toks[i : i + self.n])
        if self.short:
            for length in self.short_lengths:
                for i in range(len(toks) - length + 1):
                    hit = self.short.get(tuple(toks[i : i + length]))
                    if hit:
                        return hit, " ".join(toks[i : i + length])
        return None


def build_index(
    n: int,
    cmmlu_dir: str | None = None,
    mt_bench_dir: str | None = None,
    turkishmmlu_dir: str | None = None,
) -> Index:
    """Index CMMLU, MT-Bench and TurkishMMLU (``langadapt_tasks.benchmarks.eval_questions``: local
    directories from the config or the environment first, then the Hub and the shipped
    files). TurkishMMLU without a local copy or the Hub is skipped and noted."""
    index = Index(n)
    sets = [
        ("CMMLU", "set cmmlu_dir in the training config", lambda: cmmlu_questions(cmmlu_dir)),
        (
            "MT-Bench",
            "set mt_bench_dir in the training config",
            lambda: mtbench_questions(mt_bench_dir),
        ),
    ]
    problem = turkishmmlu_available(turkishmmlu_dir)
    if problem is None:
        sets.append(
            (
                "TurkishMMLU",
                "fix the directory LANGADAPT_TURKISHMMLU_DIR names",
                lambda: turkishmmlu_questions(turkishmmlu_dir),
            )
        )
    else:
        index.unavailable["turkishmmlu"] = f"not available: {problem}"
        log.warning(
            "decontamination: TurkishMMLU not available (%s); training rows are not checked "
            "against it. Set LANGADAPT_TURKISHMMLU_DIR to a copy of its repository to check.",
            problem,
        )
    for name, fix, questions in sets:
        try:
            for question in questions():
                index.add(question)
        except Exception as err:
            raise DecontamError(
                f"{name} could not be read for decontamination ({err}); {fix}, or "
                "decontaminate: false"
            ) from err
    return index


def conversation_text(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] != "system")
