"""Instruction-data sources: file readers, schema adapters, and the named sources.

Every row becomes a conversation: a list of ``{"role", "content"}`` messages
(roles ``system``, ``user``, ``assistant``). A row that cannot become one
raises :class:`BadRow` with a short reason, which the mix counts and reports.
A file that cannot be parsed raises :class:`DataFileError` naming the file and
line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langadapt_tasks.files import iter_jsonl, read_lines, read_text

Messages = list[dict[str, str]]
ROLES = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    # ShareGPT spellings
    "human": "user",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}


class DataFileError(ValueError):
    """A data file could not be read or parsed; the message names file and line."""


class BadRow(ValueError):
    """A row that cannot be turned into a conversation; ``str(err)`` is the reason."""


# --- readers ---------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterator[Any]:
    # A line that is JSON but not an object is a bad row (counted), not a broken file.
    return (row for _, row in iter_jsonl(path, DataFileError, objects=False))


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    text = read_text(path, DataFileError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data" and text.lstrip().startswith("{"):
            yield from _read_jsonl(path)  # JSON Lines saved as .json
            return
        raise DataFileError(f"{path}, line {err.lineno}: not valid JSON ({err.msg})") from None
    if isinstance(data, dict):  # {"data": [...]} or {"train": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataFileError(
                f"{path}, line 1: expected a JSON array of rows (or an object "
                "holding exactly one array)"
            )
        data = lists[0]
    if not isinstance(data, list):
        raise DataFileError(f"{path}, line 1: expected a JSON array of rows")
    yield from data


# JSON Lines has no limit on a field's size; CSV's default (128 KiB) would refuse long answers.
_CSV_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a CSV file with a header; a quoting error names the line its record starts on.

    ``strict`` makes the csv module refuse what it would otherwise repair silently: an
    unclosed quote (which swallows every later row into one cell) or text after a closing
    quote.
    """
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    lines = (text for _, text in read_lines(path, DataFileError))
    reader = csv.DictReader(lines, strict=True)
    start = 1  # the line the next record starts on
    try:
        _ = reader.fieldnames  # reads the header
        start = reader.line_num + 1
        for row in reader:
            if None in row:
                raise DataFileError(
                    f"{path}, line {start}: more cells than the "
                    f"{len(reader.fieldnames or [])} header columns"
                )
            start = reader.line_num + 1
            yield row
    except csv.Error as err:
        raise DataFileError(
            f"{path}, line {start}: not valid CSV ({err}); check the quotes of the record "
            "starting on this line"
        ) from None


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise DataFileError(f"{path}, line 1: not a readable Parquet file ({err})") from None
    yield from table.to_pylist()


READERS: dict[str, Callable[[Path], Iterator[dict[str, Any]]]] = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}


def read_file(path: Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such data file")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataFileError(f"{path}: unknown data file type; use one of {', '.join(READERS)}")
    return reader(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- schema adapters -------------------------------------------------------------------------


def _keys(row: Any) -> dict[str, Any]:
    """Column names stripped and lower-cased (some CSV exports pad them with spaces)."""
    if not isinstance(row, dict):
        raise BadRow("row is not an object")
    return {str(k).strip().lower(): v for k, v in row.items()}


def _text(row: dict[str, Any], key: str, required: bool = True) -> str:
    if key not in row:
        if required:
            raise BadRow(f"missing field {key!r}")
        return ""
    value = row[key]
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        value = ""
    if not isinstance(value, str | int | float):
        raise BadRow(f"field {key!r} is not text")
    value = str(value).strip()
    if required and not value:
        raise BadRow(f"empty field {key!r}")
    return value


def _pair(prompt: str, answer: str) -> Messages:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def instruction_schema(instruction: str, input_: str, output: str) -> Callable[[Any], Messages]:
    """Alpaca-like: instruction, optional input (appended after a blank line), output."""

    def adapt(raw: Any) -> Messages:
        row = _keys(raw)
        prompt = _text(row, instruction)
        extra = _text(row, input_, required=False)
        if extra:
            prompt = f"{prompt}\n\n{extra}"
        return _pair(prompt, _text(row, output))

    return adapt


def pair_schema(prompt: str, answer: str) -> Callable[[Any], Messages]:
    def adapt(raw: Any) -> Messages:
        row = _keys(raw)
        return _pair(_text(row, prompt), _text(row, answer))

    return adapt


def _check_turns(messages: Messages) -> Messages:
    if not messages:
        raise BadRow("empty conversation")
    if not any(m["role"] == "assistant" for m in messages):
        raise BadRow("no assistant turn")
    if any(not m["content"] for m in messages):
        raise BadRow("empty message content")
    if any(m["role"] == "system" for m in messages[1:]):
        raise BadRow("system message after the first turn")
    return messages


def messages_schema(raw: Any) -> Messages:
    """OpenAI ``messages``: a list of ``{"role", "content"}``."""
    row = _keys(raw)
    turns = row.get("messages")
    if turns is None:
        raise BadRow("missing field 'messages'")
    if not isinstance(turns, list):
        raise BadRow("field 'messages' is not a list")
    out = []
    for turn in turns:
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise BadRow("message without role/content")
        role = ROLES.get(str(turn["role"]).strip().lower())
        if role is None:
            raise BadRow(f"unknown role {turn['role']!r}")
        out.append({"role": role, "content": str(turn["content"] or "").strip()})
    return _check_turns(out)


def sharegpt_schema(raw: Any) -> Messages:
    """ShareGPT ``conversations``: ``[{"from", "value"}, ...]``, or LIMA's alternating strings."""
    row = _keys(raw)
    turns = row.get("conversations")
    if turns is None:
        raise BadRow("missing field 'conversations'")
    if not isinstance(turns, list):
        raise BadRow("field 'conversations' is not a list")
    out = []
    for i, turn in enumerate(turns):
        if isinstance(turn, str):  # LIMA: user, assistant, user, ...
            out.append({"role": "user" if i % 2 == 0 else "assistant", "content": turn.strip()})
            continue
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise BadRow("turn without from/value")
        role = ROLES.get(str(turn["from"]).strip().lower())
        if role is None:
            raise BadRow(f"unknown role {turn['from']!r}")
        out.append({"role": role, "content": str(turn["value"] or "").strip()})
    return _check_turns(out)


SCHEMAS: dict[str, Callable[[Any], Messages]] = {
    "alpaca": instruction_schema("instruction", "input", "output"),
    # YeungNLP/firefly-train-1.1M: kind (task type), input, target.
    "firefly": pair_schema("input", "target"),
    # Aya (CohereForAI/aya_dataset and its per-language subsets): inputs, targets.
    "aya": pair_schema("inputs", "targets"),
    # merve/turkish-instructions: Turkish column names (talimat = instruction, giriş = input,
    # çıktı = output); unconfirmed, see NAMED_SOURCES.
    "turkish-alpaca": instruction_schema("talimat", "giriş", "çıktı"),
    "messages": messages_schema,
    "sharegpt": sharegpt_schema,
}

# The columns each schema needs (after stripping spaces and lower-casing); for error messages.
SCHEMA_COLUMNS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "output"),
    "firefly": ("input", "target"),
    "aya": ("inputs", "targets"),
    "turkish-alpaca": ("talimat", "çıktı"),
    "messages": ("messages",),
    "sharegpt": ("conversations",),
}


def columns(row: Any) -> list[str]:
    """A row's column names as the schemas see them."""
    return sorted(_keys(row)) if isinstance(row, dict) else []


# Columns that identify a schema when a file says ``schema: auto``; first match wins.
_DETECT: list[tuple[str, tuple[str, ...]]] = [
    ("messages", ("messages",)),
    ("sharegpt", ("conversations",)),
    ("firefly", ("kind", "input", "target")),
    ("aya", ("inputs", "targets")),
    ("alpaca", ("instruction", "output")),
    ("turkish-alpaca", ("talimat", "çıktı")),
]


def detect_schema(row: Any, where: str) -> str:
    keys = set(_keys(row)) if isinstance(row, dict) else set()
    for name, needed in _DETECT:
        if all(k in keys for k in needed):
            return name
    raise DataFileError(
        f"{where}: cannot tell the schema from columns {sorted(keys)}; set "
        f"schema to one of {', '.join(SCHEMAS)}"
    )


# --- named sources ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NamedSource:
    name: str
    hub_id: str
    schema: str
    language: str
    split: str = "train"
    confirmed: bool = True  # False: the schema is taken from the source's family, not verified
    note: str = ""


NAMED_SOURCES = {
    s.name: s
    for s in [
        NamedSource(
            "firefly",
            "YeungNLP/firefly-train-1.1M",
            "firefly",
            "zh",
            note="Columns kind/input/target, per the dataset card.",
        ),
        NamedSource(
            "aya-tur",
            "sayhan/aya-dataset-tur",
            "aya",
            "tr",
            confirmed=False,
            note="Assumed to keep the Aya dataset's inputs/targets columns.",
        ),
        NamedSource(
            "no-robots-tr",
            "beratcmn/no-robots-turkish",
            "messages",
            "tr",
            confirmed=False,
            note="Assumed to keep No Robots' messages column (role/content).",
        ),
        NamedSource(
            "lima-tr",
            "beratcmn/lima-tr",
            "sharegpt",
            "tr",
            confirmed=False,
            note="Assumed to keep LIMA's conversations column (alternating strings).",
        ),
        NamedSource(
            "turkish-instructions",
            "merve/turkish-instructions",
            "turkish-alpaca",
            "tr",
            confirmed=False,
            note="Assumed columns talimat/giriş/çıktı (names may carry spaces; stripped).",
        ),
        NamedSource(
            "alpaca-tr",
            "parsak/alpaca-tr-9k-longest",
            "alpaca",
            "tr",
            confirmed=False,
            note="Assumed Alpaca columns instruction/input/output.",
        ),
    ]
}


def iter_hub(hub_id: str, split: str, subset: str | None = None) -> Iterator[dict[str, Any]]:
    import datasets

    try:
        dataset = datasets.load_dataset(hub_id, subset, split=split)
    except Exception as err:  # offline, renamed, gated: all end the same way
        raise DataFileError(
            f"{hub_id} (split {split}) could not be loaded from the Hub ({type(err).__name__}: "
            f"{err}); give a local copy with 'path:' in the mix spec"
        ) from err
    yield from dataset
