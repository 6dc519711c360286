"""Judge a batch of answers: cache first, then bounded concurrent judge calls.

``judge_items`` never raises for a single bad item: an answer the judge could
not score (unparseable after the allowed re-asks, or an endpoint that kept
failing) comes back with ``score=None`` and the reason, so it is excluded from
the mean and counted as unscored, never turned into a 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from langadapt_tasks.judge.cache import VerdictCache, cache_key
from langadapt_tasks.judge.client import (
    JudgeCallError,
    JudgeClientError,
    complete,
    make_client,
)
from langadapt_tasks.judge.redaction import redact
from langadapt_tasks.judge.rubrics import JudgeItem, build_messages, parse, reask_message
from langadapt_tasks.judge.settings import JudgeSettings
from langadapt_tasks.judge.verdicts import now, write_rows

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

# What a verdict file and the cache keep of one judge reply; the rest is marked as cut.
MAX_STORED_REPLY = 4000


@dataclass
class Verdict:
    item_id: str
    score: float | None
    replies: list[str] = field(default_factory=list)
    cached: bool = False
    error: str | None = None
    deadline_hit: bool = False
    judged_at: str = field(default_factory=now)


class JudgeStopped(RuntimeError):
    """A client error (bad key, unknown model or URL) stopped the batch.

    ``verdicts`` holds what was settled before it (cached and new verdicts).
    """

    def __init__(self, message: str, verdicts: dict[str, Verdict]) -> None:
        super().__init__(message)
        self.verdicts = verdicts


def cap_reply(reply: str, limit: int = MAX_STORED_REPLY) -> str:
    """``reply`` as stored: its head, and a note of its full length when it was cut."""
    if len(reply) <= limit:
        return reply
    return f"{reply[:limit]}\n[truncated by langadapt: {len(reply)} characters in full]"


def _judge_one(
    client: openai.OpenAI,
    settings: JudgeSettings,
    item: JudgeItem,
    messages: list[dict],
    stop: threading.Event,
) -> Verdict:
    conversation = list(messages)
    replies: list[str] = []
    for _ in range(settings.reasks + 1):
        if stop.is_set():
            return Verdict(item.id, None, replies, error="not judged: the judge run was stopped")
        try:
            reply = complete(client, settings, conversation)
        except JudgeClientError:
            stop.set()
            raise
        except JudgeCallError as err:
            error = redact(str(err), settings.api_key)
            return Verdict(item.id, None, replies, error=error, deadline_hit=err.deadline_hit)
        # Cut first, then redact: the stored head is all that must be clean.
        replies.append(redact(cap_reply(reply), settings.api_key))
        score = parse(settings.rubric_record, reply, item)
        if score is not None:
            return Verdict(item.id, score, replies)
        conversation += [
            {"role": "assistant", "content": reply},
            {"role": "user", "content": reask_message(settings.rubric_record, item.lang)},
        ]
    return Verdict(item.id, None, replies, error=f"no valid score in {len(replies)} replies")


def _safe_judge_one(*args: Any) -> Verdict:
    """``_judge_one``, where nothing but a client error leaves more than this answer unscored."""
    settings: JudgeSettings = args[1]
    item: JudgeItem = args[2]
    try:
        return _judge_one(*args)
    except JudgeClientError:
        raise
    except Exception as err:  # a reply we did not foresee is one unscored answer
        error = redact(f"{type(err).__name__}: {err}", settings.api_key)
        log.warning("judging %s failed: %s", item.id, error)
        return Verdict(item.id, None, error=error)


def request_key(settings: JudgeSettings, messages: list[dict]) -> str:
    """The cache key of one judge request: everything that changes its verdict."""
    params = settings.request_params()
    return cache_key(
        settings.model,
        settings.endpoint(),
        settings.rubric,
        messages,
        params["temperature"],
        params["max_tokens"],
    )


def judge_items(
    items: Iterable[JudgeItem],
    settings: JudgeSettings,
    *,
    client: openai.OpenAI | None = None,
    progress: bool = True,
) -> dict[str, Verdict]:
    """Verdicts by item id; cached verdicts are reused, new ones cached as they arrive.

    Raises ``JudgeStopped`` (with the verdicts settled so far) at the first client
    error; any other failure leaves only its own answer unscored.
    """
    unique = {item.id: item for item in items}
    cache = VerdictCache(settings.cache_path())
    verdicts: dict[str, Verdict] = {}
    todo: list[tuple[JudgeItem, list[dict], str]] = []
    stop = threading.Event()
    stopped: JudgeClientError | None = None
    try:
        for item in unique.values():
            messages = build_messages(settings.rubric_record, item)
            key = request_key(settings, messages)
            hit = cache.get(key)
            if hit is not None:
                verdicts[item.id] = Verdict(item.id, hit["score"], hit["replies"], cached=True)
            else:
                todo.append((item, messages, key))
        if todo:
            client = client or make_client(settings)
            workers = min(settings.concurrency, len(todo))
            with (
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="judge") as pool,
                tqdm(
                    total=len(todo), desc=f"Judging ({settings.model})", disable=not progress
                ) as bar,
            ):
                futures = {
                    pool.submit(_safe_judge_one, client, settings, item, messages, stop): (
                        item,
                        key,
                    )
                    for item, messages, key in todo
                }
                for future in as_completed(futures):
                    item, key = futures[future]
                    bar.update()
                    try:
                        verdict = future.result()
                    except JudgeClientError as err:
                        stopped = stopped or err
                        continue
                    if verdict.score is not None:
                        cache.put(
                            key, settings.model, settings.rubric, verdict.score, verdict.replies
                        )
                    verdicts[item.id] = verdict
    finally:
        cache.close()
    if stopped is not None:
        raise JudgeStopped(_stop_message(stopped, settings), verdicts)
    return verdicts


def _stop_message(err: JudgeClientError, settings: JudgeSettings) -> str:
    hint = {
        401: "check the API key (OPENAI_API_KEY or LANGADAPT_JUDGE_API_KEY)",
        403: "the key may not use this model; check the key and --judge-model",
        404: "check the judge model name (--judge-model) and the base URL (--base-url)",
    }.get(err.status or 0, "check the judge settings (model, base URL, max_tokens)")
    return redact(
        f"the judge at {settings.endpoint()} refused the request ({err}); {hint}. "
        "Judging stopped; verdicts received so far are cached.",
        settings.api_key,
    )


def verdict_rows(
    items: Sequence[JudgeItem], verdicts: dict[str, Verdict], settings: JudgeSettings
) -> list[dict[str, Any]]:
    """One JSON-able row per item: the item, the model, the score, the judge's raw replies."""
    rows = []
    for item in items:
        v = verdicts.get(item.id)
        rows.append(
            {
                "id": item.id,
                **item.to_dict(),
                "model_args": item.meta.get("model_args"),
                "score": None if v is None else v.score,
                "unscored": v is None or v.score is None,
                "error": "not judged" if v is None else v.error,
                "deadline_hit": False if v is None else v.deadline_hit,
                "cached": False if v is None else v.cached,
                "judge_replies": [] if v is None else v.replies,  # capped as received
                "judge": settings.describe(),
                "judged_at": now() if v is None else v.judged_at,
            }
        )
    return rows


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write verdict rows (atomically: a killed run leaves no half-written file)."""
    return write_rows(path, rows)


def summarize(
    items: Sequence[JudgeItem],
    verdicts: dict[str, Verdict],
    key: Callable[[JudgeItem], str] = lambda item: f"{item.lang}/turn{item.turn}",
) -> dict[str, Any]:
    """Mean score per ``key`` (default: language and turn) and category, with unscored counts."""
    table: dict[str, Any] = {}
    for item in items:
        task = key(item)
        entry = table.setdefault(task, {"categories": {}, "scores": [], "unscored": 0})
        cat = entry["categories"].setdefault(item.category, {"scores": [], "unscored": 0})
        v = verdicts.get(item.id)
        if v is None or v.score is None:
            entry["unscored"] += 1
            cat["unscored"] += 1
        else:
            entry["scores"].append(v.score)
            cat["scores"].append(v.score)
    for entry in table.values():
        for part in [entry, *entry["categories"].values()]:
            scores = part.pop("scores")
            part["n"] = len(scores) + part["unscored"]
            part["score"] = fmean(scores) if scores else None
    return table
