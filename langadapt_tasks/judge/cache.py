"""SQLite cache of judge verdicts, keyed by everything that changes a verdict.

The key covers the judge model, its base URL, the rubric, the exact messages,
the temperature and max_tokens. Every verdict is committed as soon as it
arrives, so a run killed half-way and started again asks the judge only for
what is missing. Only scored verdicts are stored: an unscored item is asked
again on the next run.

The file is marked as ours (SQLite's ``application_id`` and ``user_version`` in its
header). A new or empty file is set up; a cache of an earlier release (our
``verdicts`` table, exactly, without the mark) is marked and used. Any other
file (another program's database, a ``verdicts`` table of other columns, a file
that is not SQLite) is refused, naming it, and left unchanged.
"""

from __future__ import annotations

import functools
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

APPLICATION_ID = 0x4C414A43  # "LAJC": a langadapt judge cache (SQLite header, offset 68)
SCHEMA_VERSION = 1  # user_version of the file; a later release may raise it
_SQLITE_HEADER = b"SQLite format 3\x00"
_CHOOSE = (
    "choose another file with --cache or LANGADAPT_JUDGE_CACHE (a new file, or a folder "
    "to keep judge_cache.sqlite in)"
)


class CacheError(ValueError):
    """The verdict cache file cannot be opened (a folder, not SQLite, not writable, not ours)."""


@functools.cache
def _our_columns() -> list[tuple[Any, ...]]:
    """``PRAGMA table_info`` of the ``verdicts`` table as ``_SCHEMA`` creates it."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(_SCHEMA)
        return _columns(db)
    finally:
        db.close()


def _columns(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Name, type, not-null, default and primary-key place of each ``verdicts`` column."""
    return [tuple(row[1:]) for row in db.execute("PRAGMA table_info(verdicts)")]


def _state(path: Path) -> str:
    """``new`` (no file, an empty one, or a database without any table), ``ours``, or
    ``earlier`` (our table, written before the file was marked); else ``CacheError``.
    Reads only: a file that is refused is left as it was."""
    if not path.exists():
        return "new"
    if not path.is_file():
        raise CacheError(f"judge cache {path}: not a file; {_CHOOSE}")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except OSError as err:
        raise CacheError(f"judge cache {path}: cannot be read ({err}); {_CHOOSE}") from None
    if not head:
        return "new"
    if head != _SQLITE_HEADER:
        raise CacheError(
            f"judge cache {path}: not a SQLite database (so not a langadapt verdict cache); "
            f"it was left unchanged; {_CHOOSE}"
        )
    try:  # read-only: nothing is written to a file that may not be ours
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            objects = [  # SQLite's own (sqlite_autoindex_..., sqlite_sequence) left out
                (kind, name)
                for kind, name in db.execute("SELECT type, name FROM sqlite_master ORDER BY name")
                if not name.startswith("sqlite_")
            ]
            columns = _columns(db)
        finally:
            db.close()
    except sqlite3.Error as err:
        raise CacheError(
            f"judge cache {path}: cannot be read as a SQLite database ({err}); it was left "
            f"unchanged; {_CHOOSE}"
        ) from None
    ours = objects == [("table", "verdicts")] and columns == _our_columns()
    if app_id == APPLICATION_ID and ours and version <= SCHEMA_VERSION:
        return "ours"
    if app_id == APPLICATION_ID and ours:
        raise CacheError(
            f"judge cache {path}: written by a later langadapt (cache version {version}; "
            f"this one reads {SCHEMA_VERSION}); it was left unchanged. Upgrade langadapt, or "
            f"{_CHOOSE}"
        )
    if app_id in (0, APPLICATION_ID) and not objects:
        return "new"
    if app_id == 0 and ours:
        return "earlier"
    if ("table", "verdicts") in objects and columns != _our_columns():
        shown = ", ".join(f"{c[0]} {c[1]}".strip() for c in columns)
        what = f"its verdicts table is not langadapt's (columns: {shown})"
    else:
        held = ", ".join(f"{kind} {name}" for kind, name in objects) or "nothing"
        what = "a SQLite database of another program" + (
            f" (application_id {app_id:#x})" if app_id else ""
        )
        what += f", holding {held}"
    raise CacheError(
        f"judge cache {path}: not a langadapt verdict cache: {what}. It was left unchanged; "
        f"{_CHOOSE}"
    )


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
        state = _state(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            if state != "ours":  # set up, or mark a cache of an earlier release, at once
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(_SCHEMA)
                self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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
