"""Loss log: every logged step to ``loss.jsonl`` and ``loss.csv``, and a PNG curve at the end."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from langadapt_tasks.files import iter_jsonl

COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm")


def read(directory: Path) -> list[dict[str, Any]]:
    path = Path(directory) / "loss.jsonl"
    if not path.is_file():
        return []
    return [row for _, row in iter_jsonl(path, ValueError)]


def _write_all(directory: Path, rows: list[dict[str, Any]]) -> None:
    directory = Path(directory)
    with (directory / "loss.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    with (directory / "loss.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


class LossLogger(TrainerCallback):
    """Appends training-loss log entries; on resume, entries after the checkpoint are dropped.

    With several processes only the main one reads and writes the files (the logged loss is
    already the mean over processes), one entry per optimizer step of the whole run.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return  # the main process may be rewriting the files
        # state.global_step is the checkpoint's step when resuming, 0 otherwise.
        self.rows = [r for r in read(self.directory) if r["step"] <= state.global_step]
        _write_all(self.directory, self.rows)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or not state.is_world_process_zero:
            return
        row = {
            "step": state.global_step,
            "epoch": logs.get("epoch", state.epoch),
            "loss": logs["loss"],
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
        }
        self.rows.append(row)
        with (self.directory / "loss.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        with (self.directory / "loss.csv").open("a", encoding="utf-8", newline="") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore").writerow(row)


def plot(directory: Path, title: str) -> Path | None:
    """Draw ``loss.png`` from ``loss.jsonl``; None when nothing was logged."""
    rows = read(directory)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(
        [r["step"] for r in rows], [r["loss"] for r in rows], marker="." if len(rows) < 50 else None
    )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    path = Path(directory) / "loss.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
