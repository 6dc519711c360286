"""After an adapter's evaluation: was the adapter applied at all?

An engine can load an adapter and silently not apply it (lm-eval users report identical
results with LoRA in vLLM). ``langadapt-hf`` probes this before it runs; this check covers
every engine, from what the runs saved: when every log-likelihood of the adapter's run
equals the base model's, to the last bit, on the same requests, the adapter changed nothing
and its scores are the base model's. Generated text is not compared: a lightly trained
adapter may well give the base model's greedy answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Key = tuple[str, int]  # (task, doc_id)


def _task(samples_file: str) -> str:
    """``samples_<task>_<timestamp>.jsonl`` -> ``<task>`` (lm-eval's timestamps hold no _)."""
    return Path(samples_file).name.removeprefix("samples_").rsplit("_", 1)[0]


def _loglikelihood(response: Any) -> float | None:
    """The log-likelihood of one logged response (``[logprob, is_greedy]``), else None."""
    if isinstance(response, list) and len(response) == 2:
        try:
            return float(response[0])
        except (TypeError, ValueError):
            return None
    return None


def loglikelihoods(folder: Path, samples: dict[str, int]) -> dict[Key, list[float]]:
    """Every logged log-likelihood of a finished run (its marker's samples files)."""
    out: dict[Key, list[float]] = {}
    for name in samples:
        task = _task(name)
        with (folder / name).open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                record = json.loads(line)
                values = [_loglikelihood(r[0]) for r in record.get("resps") or [] if r]
                if values and all(v is not None for v in values):
                    out[(task, record["doc_id"])] = values  # type: ignore[assignment]
    return out


def unchanged(adapter: dict[Key, list[float]], base: dict[Key, list[float]]) -> int:
    """How many log-likelihoods the two runs share when every one of them is equal; 0 when
    any differs or they share none."""
    shared = adapter.keys() & base.keys()
    if not shared or any(adapter[k] != base[k] for k in shared):
        return 0
    return sum(len(adapter[k]) for k in shared)
