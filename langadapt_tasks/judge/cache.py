"""SQLite cache of judge verdicts, keyed by everything that changes a verdict.

The key covers the judge model, its base URL, the rubric, the exact messages,
the temperature and max_tokens. Every verdict is committed as soon as it
arrives, so a run killed half-way and started again asks the judge only for
what is missing. Only scored verdicts are stored: an unscored item is asked
again on the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    rubric TEXT NOT NULL,
    score REAL NOT NULL,
    replies TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


class CacheError(ValueError):
    """The verdict cache file cannot be opened (a folder, not SQLite, not writable)."""


def cache_key(
    model: str,
    base_url: str,
    rubric: str,
    messages: list[dict[str, str]],
    temperature: float,
    max_tokens: int,
) -> str:
    payload = json.dumps(
        {
            "model": model,
            "base_url": base_url.rstrip("/"),
            "rubric": rubric,
            "messages": messages,
            "temperature": float(temperature),
            "max_tokens": int(max_tokens),
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class VerdictCache:
    """A verdict table in one SQLite file, safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        if self.path.is_dir():
            raise CacheError(f"judge cache {self.path} is a folder; give a file (.sqlite) path")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as err:
            raise CacheError(
                f"judge cache {self.path}: cannot be used as a SQLite verdict cache ({err}); "
                "choose another file with --cache or LANGADAPT_JUDGE_CACHE"
            ) from None

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT score, replies FROM verdicts WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return {"score": row[0], "replies": json.loads(row[1])}

    def put(self, key: str, model: str, rubric: str, score: float, replies: list[str]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts (key, model, rubric, score, replies) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, model, rubric, score, json.dumps(replies, ensure_ascii=False)),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
