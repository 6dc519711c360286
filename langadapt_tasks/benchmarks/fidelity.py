"""Language fidelity: the share of an answer's letters written in the target language.

Judge-free. Chinese is script-based (Han characters among all letters). Turkish
shares the Latin script with English, so each sentence-sized segment is
classified with ``py3langid`` and its letters count as Turkish when the
segment is identified as Turkish. A spec's ``fidelity: off`` switches it off
for that language: the value is NaN (not measured), which lm-eval and the report
show as missing, never as 0.
"""

from __future__ import annotations

import math
import re
import unicodedata

from langadapt_tasks.languages.langid import identifier
from langadapt_tasks.languages.spec import LanguageSpecError, get

# Code is not prose in any language: fenced blocks and inline code are left out.
_CODE = re.compile(r"```.*?(```|$)|`[^`\n]*`", re.DOTALL)
# Segments: lines and sentences (Latin and CJK sentence punctuation).
_SEGMENT = re.compile(r"[^\n.!?。！？;；]+[.!?。！？;；]*")
# A segment this short is classified together with its neighbours.
_MIN_SEGMENT_LETTERS = 20


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _is_han(ch: str) -> bool:
    return "CJK" in unicodedata.name(ch, "")


def letters(text: str) -> int:
    return sum(1 for ch in text if _is_letter(ch))


def han_share(text: str) -> float:
    """Han characters among all letters (0.0 when there are no letters)."""
    total = han = 0
    for ch in text:
        if _is_letter(ch):
            total += 1
            han += _is_han(ch)
    return han / total if total else 0.0


def segments(text: str) -> list[str]:
    """Sentence-sized pieces; pieces with few letters are merged with the next."""
    out: list[str] = []
    pending = ""
    for piece in _SEGMENT.findall(text):
        pending += piece
        if letters(pending) >= _MIN_SEGMENT_LETTERS:
            out.append(pending)
            pending = ""
    if pending.strip():
        if out and letters(pending) < _MIN_SEGMENT_LETTERS:
            out[-1] += pending
        else:
            out.append(pending)
    return out


def langid_share(text: str, lang: str) -> float:
    """Letters in segments that py3langid identifies as ``lang``, among all letters."""
    total = hit = 0
    for seg in segments(text):
        n = letters(seg)
        if not n:
            continue
        total += n
        if identifier().classify(seg)[0] == lang:
            hit += n
    return hit / total if total else 0.0


def method(lang: str) -> str:
    """How fidelity is measured for ``lang``: its spec's ``fidelity`` field, else ``lang``."""
    try:
        return get(lang).fidelity
    except LanguageSpecError:
        return lang


def fidelity(text: str, lang: str) -> float:
    """Share of ``text``'s letters in language ``lang`` (by its spec: Han script, or a
    py3langid code); NaN when the spec says ``fidelity: off``.

    Code (Markdown fences and inline code) is not counted.
    """
    how = method(lang)
    if how == "off":  # the spec's ``fidelity: off``: not measured (NaN, never a 0)
        return math.nan
    text = _CODE.sub(" ", text)
    if how in ("han", "zh"):
        return han_share(text)
    return langid_share(text, how)
