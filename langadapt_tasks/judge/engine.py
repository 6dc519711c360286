"""Judge a batch of answers: cache first, then bounded concurrent judge calls.

``judge_items`` never raises for a single bad item: an answer the judge could
not score (unparseable after the allowed re-asks, or an endpoint that kept
failing) comes back with ``score=None`` and the reason, so it is excluded from
the mean and counted as unscored, never turned into a 0.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

import openai
from tqdm.auto import tqdm

from langadapt_tasks.judge.cache import VerdictCache, cache_key
from langadapt_tasks.judge.client import JudgeCallError, complete, make_client
from langadapt_tasks.judge.rubrics import JudgeItem, build_messages, parse, reask_message
from langadapt_tasks.judge.settings import JudgeSettings

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    item_id: str
    score: float | None
    replies: list[str] = field(default_factory=list)
    cached: bool = False
    error: str | None = None


def redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        return text.replace(secret, "[redacted]")
    return text


def _judge_one(
    client: openai.OpenAI, settings: JudgeSettings, item: JudgeItem, messages: list[dict]
) -> Verdict:
    conversation = list(messages)
    replies: list[str] = []
    for _ in range(settings.reasks + 1):
        try:
            reply = complete(client, settings, conversation)
        except JudgeCallError as err:
            return Verdict(item.id, None, replies, error=redact(str(err), settings.api_key))
        replies.append(redact(reply, settings.api_key))
        score = parse(settings.rubric, reply, item)
        if score is not None:
            return Verdict(item.id, score, replies)
        conversation += [
            {"role": "assistant", "content": reply},
            {"role": "user", "content": reask_message(settings.rubric, item.lang)},
        ]
    return Verdict(item.id, None, replies, error=f"no valid score in {len(replies)} replies")


def judge_items(
    items: Iterable[JudgeItem],
    settings: JudgeSettings,
    *,
    client: openai.OpenAI | None = None,
    progress: bool = True,
) -> dict[str, Verdict]:
    """Verdicts by item id; cached verdicts are reused, new ones cached as they arrive."""
    unique = {item.id: item for item in items}
    cache = VerdictCache(settings.cache_path())
    verdicts: dict[str, Verdict] = {}
    todo: list[tuple[JudgeItem, list[dict], str]] = []
    try:
        for item in unique.values():
            messages = build_messages(settings.rubric, item)
            key = cache_key(settings.model, settings.rubric, messages)
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
                    pool.submit(_judge_one, client, settings, item, messages): (item, key)
                    for item, messages, key in todo
                }
                for future in as_completed(futures):
                    item, key = futures[future]
                    verdict = future.result()
                    if verdict.score is not None:
                        cache.put(
                            key, settings.model, settings.rubric, verdict.score, verdict.replies
                        )
                    verdicts[item.id] = verdict
                    bar.update()
    finally:
        cache.close()
    return verdicts


def verdict_rows(
    items: Sequence[JudgeItem], verdicts: dict[str, Verdict], settings: JudgeSettings
) -> list[dict[str, Any]]:
    """One JSON-able row per item: the item, the score, the judge's raw replies."""
    rows = []
    for item in items:
        v = verdicts.get(item.id)
        rows.append(
            {
                "id": item.id,
                **item.to_dict(),
                "score": None if v is None else v.score,
                "unscored": v is None or v.score is None,
                "error": None if v is None else v.error,
                "cached": False if v is None else v.cached,
                "judge_replies": [] if v is None else v.replies,
                "judge": settings.describe(),
            }
        )
    return rows


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


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
