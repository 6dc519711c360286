"""Keeping the judge's API key out of everything the judge prints or stores.

A server may echo the key back altered: without its ``sk-`` prefix, upper-cased, cut
short by a character, or only a slice of it. ``redact`` therefore removes every run of
``MIN_RUN`` (8) or more consecutive characters of the key, in any letter case, not only
the exact key. It is linear in the text: one look-up of each ``MIN_RUN``-character
window in the set of the key's windows.
"""

from __future__ import annotations

import functools
import re

MIN_RUN = 8  # the shortest run of the key's characters that is removed
MARK = "[redacted]"


def _fold(text: str) -> str:
    """``text`` lower-cased one character at a time, so its indexes stay those of ``text``
    (``str.lower`` turns a few characters into two, e.g. ``İ``)."""
    low = text.lower()
    if len(low) == len(text):  # lower() never shortens: equal lengths map 1:1
        return low
    return "".join(lc if len(lc := c.lower()) == 1 else c for c in text)


@functools.lru_cache(maxsize=8)
def _windows(secret: str) -> frozenset[str]:
    key = _fold(secret)
    return frozenset(key[i : i + MIN_RUN] for i in range(len(key) - MIN_RUN + 1))


def redact(text: str, secret: str | None) -> str:
    """``text`` with every run of ``MIN_RUN`` or more characters of ``secret`` (in any
    letter case) replaced by ``[redacted]``; a shorter secret (4-7 characters) is removed
    only whole, in any letter case."""
    if not text or not secret or len(secret) < 4:
        return text
    if len(secret) < MIN_RUN:
        return re.sub(re.escape(secret), MARK, text, flags=re.IGNORECASE)
    windows = _windows(secret)
    low = _fold(text)
    hits = [i for i in range(len(low) - MIN_RUN + 1) if low[i : i + MIN_RUN] in windows]
    spans: list[tuple[int, int]] = []
    for i in hits:
        if spans and i <= spans[-1][1]:  # overlaps (or touches) the run before
            spans[-1] = (spans[-1][0], i + MIN_RUN)
        else:
            spans.append((i, i + MIN_RUN))
    if not spans:
        return text
    parts, at = [], 0
    for start, end in spans:
        parts += [text[at:start], MARK]
        at = end
    parts.append(text[at:])
    return "".join(parts)
