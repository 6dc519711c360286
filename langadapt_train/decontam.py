"""Decontamination: drop training rows that share an n-gram with an evaluation question.

Text is normalised (NFKC, case-folded, punctuation and symbols removed) and
split into tokens: every CJK / kana / Hangul character is one token, any other
run of letters and digits is one token. An evaluation item contributes all its
n-grams (n = ``decontam_ngram``, 13 by default); an item shorter than n tokens
contributes itself whole. A training row is contaminated when any of its
n-grams (or, for short items, its token sequence containing the whole item)
matches. The evaluation sets are CMMLU (every subject, dev and test; question
with its options) and MT-Bench (every turn, every shipped language).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CMMLU_ENV = "LANGADAPT_CMMLU_DIR"
MTBENCH_ENV = "LANGADAPT_MTBENCH_DIR"

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
class EvalItem:
    source: str  # e.g. "cmmlu:agronomy/test#3" or "mt_bench:zh#81"
    text: str


@dataclass
class Index:
    n: int
    grams: dict[tuple[str, ...], str] = field(default_factory=dict)
    short: dict[tuple[str, ...], str] = field(default_factory=dict)  # items shorter than n
    short_lengths: set[int] = field(default_factory=set)
    sources: dict[str, int] = field(default_factory=dict)  # eval set -> item count

    def add(self, item: EvalItem) -> None:
        toks = tokens(item.text)
        if not toks:
            return
        family = item.source.split("#")[0]
        family = "cmmlu" if family.startswith("cmmlu:") else family
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


def cmmlu_items(root: Path) -> Iterable[EvalItem]:
    from langadapt_tasks.cmmlu import read_csv

    files = sorted(Path(root).glob("*/*.csv"))
    if not files:
        raise DecontamError(f"no CMMLU CSV files under {root} (expected dev/*.csv, test/*.csv)")
    for path in files:
        for i, row in enumerate(read_csv(path)):
            text = " ".join([row["Question"], row["A"], row["B"], row["C"], row["D"]])
            yield EvalItem(f"cmmlu:{path.stem}/{path.parent.name}#{i}", text)


def cmmlu_hub_items() -> Iterable[EvalItem]:
    from langadapt_tasks.cmmlu import load_subject
    from langadapt_tasks.cmmlu_subjects import SUBJECTS

    for subject in SUBJECTS:
        for split, rows in load_subject(subject).items():
            for i, row in enumerate(rows):
                text = " ".join([row["Question"], row["A"], row["B"], row["C"], row["D"]])
                yield EvalItem(f"cmmlu:{subject}/{split}#{i}", text)


def packaged_mt_bench_dir() -> Path | None:
    """``langadapt_tasks/data/mt_bench`` when the installed tasks package ships questions."""
    import langadapt_tasks

    path = Path(langadapt_tasks.__file__).resolve().parent / "data" / "mt_bench"
    return path if path.is_dir() else None


def mt_bench_items(roots: Iterable[Path]) -> Iterable[EvalItem]:
    seen: set[str] = set()
    for root in roots:
        for path in sorted(Path(root).glob("*/question.jsonl")):
            lang = path.parent.name
            if lang in seen:  # an explicit directory wins over the packaged copy
                continue
            seen.add(lang)
            with path.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        question = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise DecontamError(
                            f"{path}, line {lineno}: not valid JSON ({err.msg})"
                        ) from None
                    for turn_no, turn in enumerate(question.get("turns", []), 1):
                        qid = question.get("question_id", lineno)
                        yield EvalItem(f"mt_bench:{lang}#{qid}.{turn_no}", str(turn))


def build_index(n: int, cmmlu_dir: str | None = None, mt_bench_dir: str | None = None) -> Index:
    """Index CMMLU and MT-Bench; local directories (config or env) first, then the Hub."""
    index = Index(n)
    cmmlu = cmmlu_dir or os.environ.get(CMMLU_ENV)
    if cmmlu:
        items: Iterable[EvalItem] = cmmlu_items(Path(cmmlu))
    else:
        items = cmmlu_hub_items()
    try:
        for item in items:
            index.add(item)
    except DecontamError:
        raise
    except Exception as err:
        raise DecontamError(
            f"CMMLU could not be read for decontamination ({err}); set "
            f"cmmlu_dir / {CMMLU_ENV}, or decontaminate: false"
        ) from err
    roots = [Path(p) for p in (mt_bench_dir or os.environ.get(MTBENCH_ENV),) if p]
    packaged = packaged_mt_bench_dir()
    if packaged:
        roots.append(packaged)
    for item in mt_bench_items(roots):
        index.add(item)
    # Every language the MT-Bench tasks ship must be covered; those not found locally come
    # from the tasks' own loader (the Hub for Chinese, the packaged Turkish translation).
    covered = {k.split(":", 1)[1] for k in index.sources if k.startswith("mt_bench:")}
    for lang in shipped_mt_bench_languages():
        if lang in covered:
            continue
        try:
            from langadapt_tasks.mtbench_data import load_questions

            questions = load_questions(None, lang)
        except Exception as err:
            raise DecontamError(
                f"MT-Bench questions ({lang}) could not be loaded ({err}); set mt_bench_dir / "
                f"{MTBENCH_ENV} to a directory with <lang>/question.jsonl, or decontaminate: false"
            ) from err
        for question in questions:
            for turn_no, turn in enumerate(question["turns"], 1):
                index.add(EvalItem(f"mt_bench:{lang}#{question['question_id']}.{turn_no}", turn))
    if not any(k.startswith("mt_bench") for k in index.sources):
        raise DecontamError(
            f"no MT-Bench questions found; set mt_bench_dir / {MTBENCH_ENV} to a "
            "directory with <lang>/question.jsonl, or decontaminate: false"
        )
    return index


def shipped_mt_bench_languages() -> tuple[str, ...]:
    """The languages of langadapt's MT-Bench tasks."""
    try:
        from langadapt_tasks.mtbench_data import LANGS
    except ImportError:  # a langadapt_tasks without MT-Bench
        return ()
    return tuple(LANGS)


def conversation_text(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] != "system")
