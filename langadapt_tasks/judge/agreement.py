"""``langadapt judge-agreement``: how far a judge agrees with MT-Bench's human experts.

Reproduces the agreement table of Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and
Chatbot Arena" (2023, Table 2) for any judge endpoint and rubric, on the MT-Bench human
judgments (``lmsys/mt_bench_human_judgments``, CC-BY-4.0: expert votes on six models'
answers to the 80 English questions, both turns), read from the Hub or a local copy of
its files.

As FastChat's ``fastchat/llm_judge/compute_agreement.py`` counts it: votes are keyed by
(turn, question, the two models in name order), each winner turned to that order; the
judge gives one vote per key; every expert vote on a key (``judge`` starting with
"expert"; the authors' votes are not the humans') is one comparison, agreeing when both
say the same model or both say a tie ("tie" and "tie (bothbad)" are one). S1 counts every
comparison; S2 drops those where either side says a tie. The humans among themselves:
every two expert votes on a key.

A pairwise rubric judges each key's two answers in both orders and combines them as
``judge.pairwise`` does; a single-answer rubric scores each answer once and the higher
score wins (equal scores: a tie), as the paper derives its single-answer judge's votes.
A key the judge left unscored is not counted (and reported). Verdicts are cached as by
``langadapt judge``, so a rerun asks only what is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.mtbench import data_dir, load_questions
from langadapt_tasks.judge.engine import judge_items, write_jsonl
from langadapt_tasks.judge.pairwise import (
    BOOTSTRAP_SEED,
    LOSS,
    RESAMPLES,
    WIN,
    combine,
    orders_agree,
    pair_rows,
    pair_up,
    percentile_bootstrap,
    winner,
)
from langadapt_tasks.judge.rejudge import print_head
from langadapt_tasks.judge.rubrics import JudgeItem
from langadapt_tasks.judge.settings import JudgeSettings, require_configured
from langadapt_tasks.paths import offline

HUB_ID = "lmsys/mt_bench_human_judgments"
HUB_SPLIT = "human"
COLUMNS = ("question_id", "model_a", "model_b", "winner", "judge", "conversation_a",
           "conversation_b", "turn")  # fmt: skip
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
TIE = "tie"
# Zheng et al. 2023, Table 2 (MT-Bench, agreement with the expert votes):
# (turn, judge) -> (S1 %, votes, S2 %, votes).
PUBLISHED: dict[tuple[int, str], tuple[int, int, int, int]] = {
    (1, "GPT-4 pair"): (66, 1343, 85, 859),
    (1, "GPT-4 single"): (60, 1280, 85, 739),
    (1, "human–human"): (63, 721, 81, 479),
    (2, "GPT-4 pair"): (66, 1325, 85, 864),
    (2, "GPT-4 single"): (59, 1285, 84, 776),
    (2, "human–human"): (67, 707, 82, 474),
}
SETUPS = {"S1": (), "S2": (TIE,)}  # setup -> the votes it leaves out

Key = tuple[int, int, str, str]  # (turn, question id, first model by name, second)


class AgreementDataError(ValueError):
    """The human judgments could not be read (names the file and row)."""


@dataclass(frozen=True)
class Vote:
    """One human vote, turned to the key's model order (``winner``: model_a is ``key[2]``)."""

    key: Key
    winner: str
    judge: str
    questions: tuple[str, ...]
    answers: dict[str, tuple[str, ...]] = field(compare=False, hash=False)  # model -> answers


def _revert(vote: str) -> str:
    return {"model_a": "model_b", "model_b": "model_a"}.get(vote, vote)


def _tie(vote: str) -> str:
    return TIE if TIE in vote else vote


def _turns(conversation: Any, turn: int, where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(user messages, assistant messages) of a conversation, at least ``turn`` of each."""
    if not isinstance(conversation, list | tuple):
        raise AgreementDataError(f"{where}: a conversation must be a list of messages")
    by_role: dict[str, list[str]] = {"user": [], "assistant": []}
    for message in conversation:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in by_role or not isinstance(message.get("content"), str):
            raise AgreementDataError(
                f"{where}: each message needs a role (user or assistant) and a text content"
            )
        by_role[role].append(message["content"])
    if min(len(by_role["user"]), len(by_role["assistant"])) < turn:
        raise AgreementDataError(f"{where}: the conversation has no turn {turn}")
    return tuple(by_role["user"]), tuple(by_role["assistant"][:turn])


def parse_vote(row: Any, where: str) -> Vote:
    """One row of the dataset, checked."""
    missing = [c for c in COLUMNS if c not in row] if isinstance(row, dict) else COLUMNS
    if missing:
        raise AgreementDataError(
            f"{where}: not a row of {HUB_ID}: no {', '.join(missing)} (its columns: "
            f"{', '.join(COLUMNS)})"
        )
    turn, qid = row["turn"], row["question_id"]
    if turn not in (1, 2) or not isinstance(qid, int) or isinstance(qid, bool):
        raise AgreementDataError(f"{where}: turn must be 1 or 2 and question_id a number")
    if row["winner"] not in WINNERS:
        raise AgreementDataError(
            f"{where}: winner {row['winner']!r} is none of {', '.join(WINNERS)}"
        )
    a, b = str(row["model_a"]), str(row["model_b"])
    if a == b:
        raise AgreementDataError(f"{where}: model_a and model_b are both {a!r}")
    questions, answers_a = _turns(row["conversation_a"], turn, f"{where} conversation_a")
    _, answers_b = _turns(row["conversation_b"], turn, f"{where} conversation_b")
    judge = row["judge"] if isinstance(row["judge"], str) else json.dumps(row["judge"])
    first, second = sorted((a, b))
    vote = row["winner"] if a == first else _revert(row["winner"])
    return Vote((turn, qid, first, second), vote, judge, questions, {a: answers_a, b: answers_b})


def _read_file(path: Path) -> list[Any]:
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except (OSError, ValueError) as err:  # pyarrow's errors are ValueErrors too
        raise AgreementDataError(f"{path}: cannot be read ({type(err).__name__}: {err})") from None


def local_files(data: Path) -> list[Path]:
    """The human votes' files under ``data``: the Hub repository's ``human-*.parquet``
    (its ``data/`` folder), else FastChat's ``human_judgments.json``; or ``data`` itself."""
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such file or directory (--data)")
    for pattern in ("human-*.parquet", "human_judgments.json", "human*.jsonl"):
        if found := sorted(data.rglob(pattern)):
            return found
    raise FileNotFoundError(
        f"{data}: no human votes under it (looked for data/human-*.parquet, as in the Hub "
        f"repository {HUB_ID}, and FastChat's human_judgments.json)"
    )


def load_votes(data: Path | None) -> list[Vote]:
    """Every vote of the human split: from ``data`` (a file or a local copy of the
    repository), else from the Hub."""
    if data is not None:
        return [
            parse_vote(row, f"{path} row {n}")
            for path in local_files(data)
            for n, row in enumerate(_read_file(path), 1)
        ]
    hint = f"Download the dataset's files once and pass them with --data DIR ({HUB_ID})."
    if offline():
        raise AgreementDataError(f"the Hub is off (HF_HUB_OFFLINE). {hint}")
    try:
        from datasets import load_dataset

        rows = load_dataset(HUB_ID, split=HUB_SPLIT)
    except Exception as err:  # offline, renamed, gated: all end the same way
        raise AgreementDataError(
            f"{HUB_ID} could not be loaded from the Hub ({type(err).__name__}: {err}). {hint}"
        ) from err
    return [parse_vote(row, f"{HUB_ID} {HUB_SPLIT} row {n}") for n, row in enumerate(rows, 1)]


def experts(votes: Iterable[Vote]) -> list[Vote]:
    """The human experts' votes (FastChat's ``get_judge_name``: "expert…" is human)."""
    return [v for v in votes if v.judge.startswith("expert")]


def sample(votes: Sequence[Vote], limit: int | None, seed: int) -> list[Vote]:
    """``limit`` votes drawn by ``random.Random(seed)`` (all, in order, without a limit)."""
    if limit is None or limit >= len(votes):
        return list(votes)
    if limit < 1:
        raise ValueError(f"--limit must be at least 1: {limit}")
    return random.Random(seed).sample(list(votes), limit)


# --- the judge's votes ------------------------------------------------------------------------


def _questions_by_id(root: Path | None) -> dict[int, dict[str, Any]]:
    return {int(q["question_id"]): q for q in load_questions(root, "en")}


def _item(vote: Vote, model: str, meta: dict[int, dict[str, Any]]) -> JudgeItem:
    turn, qid = vote.key[0], vote.key[1]
    if qid not in meta:
        raise AgreementDataError(f"question {qid} is not an English MT-Bench question")
    q = meta[qid]
    return JudgeItem(
        "en", turn, qid, q["category"], vote.questions, vote.answers[model],
        tuple(q.get("reference") or ()), model,
    )  # fmt: skip


@dataclass
class JudgeVotes:
    winners: dict[Key, str | None]  # the judge's vote per key, None when unscored
    rows: list[dict[str, Any]]  # what it said, per key (written with --out)
    consistency: float | None = None  # a pairwise judge: share of keys whose orders agree


def judge_votes(
    votes: Sequence[Vote], settings: JudgeSettings, *, progress: bool = True
) -> JudgeVotes:
    """The judge's vote on every key of ``votes`` (each key judged once)."""
    meta = _questions_by_id(data_dir(None))
    first_seen: dict[Key, Vote] = {}
    for vote in votes:
        first_seen.setdefault(vote.key, vote)
    if settings.rubric_record.kind == "pairwise":
        return _pairwise(first_seen, meta, settings, progress)
    items = {
        (key, model): _item(vote, model, meta)
        for key, vote in first_seen.items()
        for model in key[2:]
    }
    verdicts = judge_items(items.values(), settings, progress=progress)
    winners: dict[Key, str | None] = {}
    rows = []
    for key in first_seen:
        scores = [verdicts.get(items[key, m].id) for m in key[2:]]
        a, b = (None if v is None else v.score for v in scores)
        winners[key] = None if a is None or b is None else (
            "model_a" if a > b else "model_b" if b > a else TIE
        )  # fmt: skip
        rows.append({"key": list(key), "scores": [a, b], "winner": winners[key],
                     "replies": [[] if v is None else v.replies for v in scores]})  # fmt: skip
    return JudgeVotes(winners, rows)


def _pairwise(
    first_seen: dict[Key, Vote],
    meta: dict[int, dict[str, Any]],
    settings: JudgeSettings,
    progress: bool,
) -> JudgeVotes:
    pairs = {  # the first model by name against the second, in both orders
        key: pair_up([_item(vote, key[2], meta)], [_item(vote, key[3], meta)]).pairs[0]
        for key, vote in first_seen.items()
    }
    verdicts = judge_items([i for p in pairs.values() for i in p], settings, progress=progress)
    outcome = {WIN: "model_a", LOSS: "model_b", TIE: TIE}
    winners: dict[Key, str | None] = {}
    agree = []
    for key, (ab, ba) in pairs.items():
        orders = winner(verdicts.get(ab.id)), winner(verdicts.get(ba.id))
        result = combine(*orders)
        winners[key] = None if result is None else outcome[result]
        if result is not None:
            agree.append(orders_agree(*orders))
    rows = pair_rows(list(pairs.values()), verdicts, settings)
    consistency = sum(agree) / len(agree) if agree else None
    return JudgeVotes(winners, rows, consistency)


# --- agreement, as compute_agreement.py counts it ------------------------------------------


def judge_human(
    judge: dict[Key, str | None], human: Sequence[Vote], ban: Sequence[str]
) -> dict[Key, tuple[int, int]]:
    """Per key: (agreeing, compared) of the judge's vote with each expert vote on the key."""
    out: dict[Key, tuple[int, int]] = {}
    for vote in human:
        mine = judge.get(vote.key)
        if mine is None or _tie(mine) in ban or _tie(vote.winner) in ban:
            continue
        agree, total = out.get(vote.key, (0, 0))
        out[vote.key] = (agree + (_tie(mine) == _tie(vote.winner)), total + 1)
    return out


def human_human(human: Sequence[Vote], ban: Sequence[str]) -> dict[Key, tuple[int, int]]:
    """Per key: (agreeing, compared) over every two expert votes on the key."""
    by_key: dict[Key, list[str]] = {}
    for vote in human:
        by_key.setdefault(vote.key, []).append(_tie(vote.winner))
    out = {}
    for key, winners in by_key.items():
        kept = [w for w in winners if w not in ban]
        pairs = [(x, y) for i, x in enumerate(kept) for y in kept[i + 1 :]]
        if pairs:
            out[key] = (sum(x == y for x, y in pairs), len(pairs))
    return out


def _rate(counts: list[tuple[int, int]]) -> float:
    return sum(a for a, _ in counts) / sum(t for _, t in counts)


def interval(per_key: dict[Key, tuple[int, int]]) -> tuple[float, float] | None:
    """95 % bootstrap interval of the agreement, resampling keys (the votes on one pair of
    answers share the judge's vote, so they are resampled together)."""
    return percentile_bootstrap(list(per_key.values()), _rate)


def _cell(per_key: dict[Key, tuple[int, int]], with_interval: bool) -> dict[str, Any]:
    agree = sum(a for a, _ in per_key.values())
    total = sum(t for _, t in per_key.values())
    return {
        "agree": agree,
        "votes": total,
        "agreement": agree / total if total else None,
        **({"interval": interval(per_key)} if with_interval else {}),
    }


def agreement(
    judge: dict[Key, str | None], sampled: Sequence[Vote], every: Sequence[Vote]
) -> dict[str, Any]:
    """Per turn and setup: the judge against the sampled expert votes, and the experts among
    themselves over ``every`` expert vote."""
    out: dict[str, Any] = {}
    for turn in (1, 2):
        mine = [v for v in sampled if v.key[0] == turn]
        theirs = [v for v in every if v.key[0] == turn]
        for setup, ban in SETUPS.items():
            out[f"turn{turn}/{setup}"] = {
                "judge": _cell(judge_human(judge, mine, ban), True),
                "humans": _cell(human_human(theirs, ban), False),
            }
    return out


# --- the command ---------------------------------------------------------------------------


def run_agreement(
    settings: JudgeSettings,
    *,
    data: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Judge the (sampled) expert votes' answers and compare; raises ``JudgeStopped`` at a
    client error, as ``langadapt judge`` does."""
    require_configured(settings)
    if not settings.enabled:
        raise ValueError("the judge is switched off (judge=off / LANGADAPT_JUDGE=off)")
    every = experts(load_votes(data))
    if not every:
        raise AgreementDataError(f"no expert votes (judge 'expert_…') in {data or HUB_ID}")
    sampled = sample(every, limit, seed)
    judged = judge_votes(sampled, settings, progress=progress)
    unscored = sorted(k for k, w in judged.winners.items() if w is None)
    report = {
        "judge": settings.describe(),
        "data": str(data) if data else HUB_ID,
        "votes": len(sampled),
        "of_votes": len(every),
        "sample_seed": seed if limit is not None and limit < len(every) else None,
        "pairs_judged": len(judged.winners),
        "unscored": len(unscored),
        "unscored_pairs": [f"turn {t} question {q}: {a} vs {b}" for t, q, a, b in unscored],
        "order_consistency": judged.consistency,
        "bootstrap": {"seed": BOOTSTRAP_SEED, "resamples": RESAMPLES},
        "agreement": agreement(judged.winners, sampled, every),
        "published": {f"turn{t}/{j}": v for (t, j), v in PUBLISHED.items()},
    }
    if out is not None:
        stamp = dt.datetime.now().isoformat().replace(":", "-")
        report["written"] = [
            str(write_jsonl(out / f"agreement_votes_{stamp}.jsonl", judged.rows)),
            str(write_jsonl(out / f"agreement_{stamp}.jsonl", [report])),
        ]
    return report


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def table(report: dict[str, Any]) -> str:
    """Markdown: this judge and the experts among themselves beside the published figures."""
    lines = [
        "| turn | setup | this judge vs humans | 95% interval | humans vs humans (these data) "
        "| GPT-4 pair (published) | GPT-4 single (published) | humans (published) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for turn in (1, 2):
        for n, setup in enumerate(SETUPS):
            cell = report["agreement"][f"turn{turn}/{setup}"]
            mine, theirs = cell["judge"], cell["humans"]
            low_high = mine["interval"]
            span = "–" if low_high is None else f"{_pct(low_high[0])}–{_pct(low_high[1])}"
            published = [
                f"{p[2 * n]}% ({p[2 * n + 1]})"
                for p in (PUBLISHED[turn, j] for j in ("GPT-4 pair", "GPT-4 single", "human–human"))
            ]
            name = f"{setup} ({'with' if setup == 'S1' else 'without'} ties)"
            lines.append(
                f"| {turn} | {name} | {_pct(mine['agreement'])} ({mine['votes']}) | {span} | "
                f"{_pct(theirs['agreement'])} ({theirs['votes']}) | {' | '.join(published)} |"
            )
    return "\n".join(lines)


def print_report(report: dict[str, Any], as_json: bool) -> None:
    if print_head(report, as_json):
        return
    drawn = (
        f" (a sample drawn with seed {report['sample_seed']})"
        if report["sample_seed"] is not None
        else ""
    )
    print(
        f"votes: {report['votes']} of {report['of_votes']} expert votes{drawn}, "
        f"{report['pairs_judged']} pairs of answers judged, {report['unscored']} unscored; "
        f"from {report['data']}"
    )
    print(
        "agreement as FastChat's compute_agreement.py counts it (votes in brackets); S1 with "
        "ties, S2 without; 95% bootstrap interval over pairs of answers "
        f"({report['bootstrap']['resamples']} resamples, seed {report['bootstrap']['seed']}); "
        "published: Zheng et al. 2023, Table 2\n"
    )
    print(table(report))
    if report["order_consistency"] is not None:
        print(f"\norder consistency: {_pct(report['order_consistency'])} of scored pairs")
    for line in report["unscored_pairs"]:
        print(f"unscored: {line}")
    for path in report.get("written", []):
        print(f"written: {path}")
