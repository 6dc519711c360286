"""Pairwise judging: each model's MT-Bench answers against a baseline's, in both orders.

``langadapt judge OUT --rubric fastchat-pair --against BASELINE`` (``rejudge``, which judges
with the engine; this module loads no client, for the report) pairs every answer under
``OUT`` with the baseline's answer to the same question and turn (matched by language,
question id and turn, never by position; a question either side lacks is reported), and
judges each pair twice: the model's answer shown first (A) and shown second (B), as
FastChat's ``play_a_match_pair`` does. The two verdicts are combined as FastChat combines
them: a win or a loss only when both orders agree, otherwise a tie. A pair with an order
left unscored is unscored, never a tie. Both raw verdicts are kept in
``pair_<group>_<time>.jsonl`` beside the model's samples.

Per model and group (language and turn) and category: wins, ties, losses, the win rate
(wins + ties / 2, over the scored pairs) with a 95 % bootstrap interval over questions
(``BOOTSTRAP_SEED``, ``RESAMPLES``), and the order consistency (the share of scored pairs
whose two orders agree).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from langadapt_tasks.benchmarks.mtbench import CATEGORIES, group_name
from langadapt_tasks.judge.rubrics import JudgeItem
from langadapt_tasks.judge.verdicts import now
from langadapt_tasks.languages.rubric_registry import PAIR_WINNERS

if TYPE_CHECKING:  # the judge's engine and settings load openai: not for the report
    from langadapt_tasks.judge.engine import Verdict
    from langadapt_tasks.judge.settings import JudgeSettings

PAIR_GLOB = "pair_mtbench_langadapt_*.jsonl"
BOOTSTRAP_SEED = 0
RESAMPLES = 1000
WIN, TIE, LOSS = "win", "tie", "loss"
# A verdict, seen from the model: its answer shown first (A), or shown second.
_AS_FIRST = {"A": WIN, "B": LOSS, "tie": TIE}
_AS_SECOND = {"A": LOSS, "B": WIN, "tie": TIE}

Key = tuple[str, int, int]  # (language, turn, question id)
T = TypeVar("T")


def _key(item: JudgeItem) -> Key:
    return (item.lang, item.turn, item.question_id)


def winner(verdict: Verdict | None) -> str | None:
    """ "A", "B" or "tie"; None when the order has no verdict."""
    if verdict is None or verdict.score is None:
        return None
    return PAIR_WINNERS.get(verdict.score)


def combine(first: str | None, second: str | None) -> str | None:
    """The pair's outcome for the model from its two orders' winners (``first``: the model's
    answer shown as A; ``second``: shown as B), as FastChat's ``play_a_match_pair`` and its
    pairwise results combine them: agreeing orders decide, disagreeing ones are a tie; an
    order without a verdict leaves the pair unscored."""
    if first is None or second is None:
        return None
    g1, g2 = _AS_FIRST[first], _AS_SECOND[second]
    return g1 if g1 == g2 else TIE


@dataclass
class Pairing:
    """The pairs of one model's answers with the baseline's, and what could not be paired."""

    pairs: list[tuple[JudgeItem, JudgeItem]]  # (model's answer shown first, shown second)
    missing: list[str]  # "zh turn 1 question 81: no baseline answer", and the converse


def pair_up(items: Sequence[JudgeItem], against: Sequence[JudgeItem]) -> Pairing:
    """Each of ``items`` with the baseline's answer to the same language, turn and question."""
    theirs = {_key(i): i for i in against}
    mine = {_key(i): i for i in items}
    pairs, missing = [], []
    for key, item in sorted(mine.items()):
        other = theirs.get(key)
        if other is None:
            missing.append(f"{key[0]} turn {key[1]} question {key[2]}: no baseline answer")
            continue
        ref = item.reference or other.reference
        shared = {"rival": other.answers, "rival_model": other.model, "reference": ref}
        pairs.append((replace(item, **shared, first=True), replace(item, **shared, first=False)))
    for key in sorted(set(theirs) - set(mine)):
        missing.append(f"{key[0]} turn {key[1]} question {key[2]}: no answer of the model")
    return Pairing(pairs, missing)


def pair_id(item: JudgeItem) -> str:
    return f"{item.model}|vs|{item.rival_model}|{item.lang}/turn{item.turn}/{item.question_id}"


def pair_rows(
    pairs: Sequence[tuple[JudgeItem, JudgeItem]],
    verdicts: dict[str, Verdict],
    settings: JudgeSettings,
) -> list[dict[str, Any]]:
    """One row per pair: the question, both models' answers, each order's raw verdict and
    the combined outcome for the model."""
    rows = []
    for ab, ba in pairs:
        orders = {}
        for name, item in (("AB", ab), ("BA", ba)):
            v = verdicts.get(item.id)
            orders[name] = {
                "winner": winner(v),
                "replies": [] if v is None else v.replies,
                "error": "not judged" if v is None else v.error,
                "cached": False if v is None else v.cached,
                "deadline_hit": False if v is None else v.deadline_hit,
            }
        result = combine(orders["AB"]["winner"], orders["BA"]["winner"])
        rows.append(
            {
                "id": pair_id(ab),
                **ab.to_dict(),
                "model_args": ab.meta.get("model_args"),
                "orders": orders,  # AB: the model's answer shown first (A); BA: second
                "result": result,
                "unscored": result is None,
                "judge": settings.describe(),
                "judged_at": now(),
            }
        )
    return rows


def win_rate(outcomes: Sequence[str]) -> float | None:
    """(wins + ties / 2) / scored outcomes."""
    if not outcomes:
        return None
    return (outcomes.count(WIN) + outcomes.count(TIE) / 2) / len(outcomes)


def percentile_bootstrap(
    units: Sequence[T],
    statistic: Callable[[list[T]], Any],
    seed: int = BOOTSTRAP_SEED,
    resamples: int = RESAMPLES,
) -> tuple[float, float] | None:
    """The 95 % percentile interval of ``statistic`` over ``resamples`` resamples of
    ``units`` (with replacement), from ``random.Random(seed)``; None without units."""
    if not units:
        return None
    rng = random.Random(seed)
    n = len(units)
    values = sorted(
        statistic([units[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples)
    )
    return values[int(0.025 * resamples)], values[int(0.975 * resamples) - 1]


def bootstrap_interval(
    outcomes: Sequence[str], seed: int = BOOTSTRAP_SEED, resamples: int = RESAMPLES
) -> tuple[float, float] | None:
    """The 95 % interval of the win rate, resampling the questions."""
    return percentile_bootstrap(outcomes, win_rate, seed, resamples)


def orders_agree(first: str | None, second: str | None) -> bool:
    """Whether the two orders' winners (the model's answer shown as A, then as B) name the
    same answer, or both a tie."""
    if first is None or second is None:
        return False
    return _AS_FIRST[first] == _AS_SECOND[second]


def summarize_pairs(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per group (language and turn), then per category: wins, ties, losses, unscored, the
    win rate with its bootstrap interval, and the order consistency."""
    table: dict[str, Any] = {}
    for row in rows:
        group = group_name(row["lang"], row["turn"])
        for key in (group, f"{group}/{row['category']}"):
            table.setdefault(key, []).append(row)
    out = {}
    for key, part in table.items():
        outcomes = [r["result"] for r in part if r["result"] is not None]
        agree = [
            orders_agree(r["orders"]["AB"]["winner"], r["orders"]["BA"]["winner"])
            for r in part
            if r["result"] is not None
        ]
        out[key] = {
            "win": outcomes.count(WIN),
            "tie": outcomes.count(TIE),
            "loss": outcomes.count(LOSS),
            "unscored": len(part) - len(outcomes),
            "win_rate": win_rate(outcomes),
            "interval": bootstrap_interval(outcomes),
            "consistency": sum(agree) / len(agree) if agree else None,
        }
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def pair_table(summary: dict[str, Any]) -> str:
    """Markdown: per group and category, W/T/L, the win rate and its interval, consistency."""
    lines = [
        "| pairwise | win | tie | loss | unscored | win rate % | 95% interval | consistent % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups = sorted(k for k in summary if "/" not in k)
    for group in groups:
        keys = [group, *(f"{group}/{c}" for c in CATEGORIES if f"{group}/{c}" in summary)]
        for key in keys:
            s = summary[key]
            name = f"**{key}**" if key == group else key.split("/", 1)[1]
            low_high = s["interval"]
            interval = "–" if low_high is None else f"{_pct(low_high[0])}–{_pct(low_high[1])}"
            lines.append(
                f"| {name} | {s['win']} | {s['tie']} | {s['loss']} | {s['unscored']} | "
                f"{_pct(s['win_rate'])} | {interval} | {_pct(s['consistency'])} |"
            )
    return "\n".join(lines)
