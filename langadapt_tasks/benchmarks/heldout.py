"""Held-out rows of a training mix: what the ``heldout_langadapt`` task scores.

``langadapt-train`` writes ``heldout.jsonl``: one ``{"messages": [...]}`` per line, the
rows of the mix kept out of training. Each assistant message of a row is scored once:
its context is the model's chat template applied to the messages before it with
``add_generation_prompt=True`` (the rendering training used), its continuation is its
content exactly as written (no end-of-turn token), and it counts
``len(content.encode("utf-8"))`` bytes. Over a file,
``bits_per_byte = -sum(loglik) / (ln 2 * sum(bytes))``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langadapt_tasks.languages import spec

METADATA_FILE = "heldout_file"  # lm_eval --metadata '{"heldout_file": PATH}'
METADATA_TOKENIZER = "heldout_tokenizer"  # the tokenizer whose chat template renders contexts
TASK = "heldout_langadapt"
ENV_FILE = "LANGADAPT_HELDOUT_FILE"
ROLES = ("system", "user", "assistant")

Messages = list[dict[str, str]]


def task_name(language: str = "") -> str:
    """``heldout_langadapt_<code>`` of a language; the generic ``heldout_langadapt`` for ""."""
    return f"{TASK}_{language}" if language else TASK


class HeldoutDataError(ValueError):
    """A held-out file that is missing, or a row that cannot be scored."""


def heldout_file(metadata: dict[str, Any], language: str | None = None) -> Path:
    """The file named by ``--metadata heldout_file``, else ``LANGADAPT_HELDOUT_FILE``, else
    (``heldout_langadapt_<language>``) the language spec's ``heldout_file``."""
    task = task_name(language or "")
    named = metadata.get(METADATA_FILE) or os.environ.get(ENV_FILE)
    if not named and language:
        named = spec.get(language).heldout_file
    if not named:
        default = f", or the {language} spec's heldout_file" if language else ""
        raise HeldoutDataError(
            f"{task}: no held-out file; name the heldout.jsonl that langadapt-train wrote "
            f'with lm_eval --metadata \'{{"{METADATA_FILE}": "PATH"}}\' or {ENV_FILE}=PATH'
            + default
        )
    path = Path(str(named)).expanduser()
    if not path.is_file():
        raise HeldoutDataError(f"{task}: {path} is not a file ({METADATA_FILE})")
    return path


def read_rows(path: Path) -> list[Messages]:
    """Every row of ``path``, checked: a ``messages`` list of role/content strings with at
    least one assistant message. An error names the file and line."""
    rows: list[Messages] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise HeldoutDataError(f"{where}: not JSON ({err.msg})") from None
            messages = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(messages, list) or not messages:
                raise HeldoutDataError(f'{where}: expected {{"messages": [...]}}')
            for i, message in enumerate(messages):
                if not (
                    isinstance(message, dict)
                    and message.get("role") in ROLES
                    and isinstance(message.get("content"), str)
                ):
                    raise HeldoutDataError(
                        f"{where}: message {i} needs a role ({', '.join(ROLES)}) and a "
                        "content string"
                    )
            if not any(m["role"] == "assistant" for m in messages):
                raise HeldoutDataError(f"{where}: no assistant message to score")
            rows.append([{"role": m["role"], "content": m["content"]} for m in messages])
    if not rows:
        raise HeldoutDataError(f"{path}: no rows")
    return rows


def scored_messages(rows: list[Messages], render: Callable[[Messages], str]) -> Iterator[dict]:
    """One document per assistant message: its row and turn, the rendered context, the
    continuation and its UTF-8 bytes."""
    for row, messages in enumerate(rows):
        for turn, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            content = message["content"]
            yield {
                "row": row,
                "turn": turn,
                "context": render(messages[:turn]),
                "continuation": content,
                "bytes": len(content.encode("utf-8")),
            }
