"""A run's output folder: the files it holds, whether it finished, whether it may be written.

Light on purpose (no torch, transformers or TRL): the study and the CLI ask these
questions without loading the trainer.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("langadapt_train")

CONFIG_NAME = "langadapt_train.yaml"  # the run's settings (langadapt_train.config)
DONE = "training_complete.json"
MANIFEST = "data_manifest.json"
DECONTAM_REPORT = "decontamination.jsonl"
CHECKPOINTS = "checkpoints"
PREVIEW = "train_preview.jsonl"
HELDOUT = "heldout.jsonl"
# What a run writes before its first checkpoint; a folder holding only these (and an empty
# checkpoints/) is a run that saved no progress and may be started over.
RECORDS = {
    CONFIG_NAME,
    MANIFEST,
    DECONTAM_REPORT,
    PREVIEW,
    HELDOUT,
    "loss.jsonl",
    "loss.csv",
    "loss.png",
    CHECKPOINTS,
}


class TrainError(RuntimeError):
    """The run cannot start (e.g. output exists without --resume)."""


def is_finished(output: Path) -> bool:
    return (Path(output) / DONE).is_file()


def has_checkpoints(output: Path) -> bool:
    """The run in ``output`` got as far as writing a checkpoint (complete or not)."""
    root = Path(output) / CHECKPOINTS
    return root.is_dir() and any(root.iterdir())


def check_output(output: Path, resume: bool) -> Path | None:
    """Refuse an output folder this run must not write to; the checkpoint to resume from.

    - a finished run is never touched;
    - checkpoints of an unfinished run need ``resume``;
    - a folder holding anything a run of ours did not write is refused (so an adapter or
      model someone put there is never overwritten);
    - a folder holding only the records a run writes before its first checkpoint is a run
      that saved no progress: it is started over.
    """
    if is_finished(output):
        raise TrainError(f"{output} already holds a finished run; choose another --output")
    if not output.exists():
        return None
    if not output.is_dir():
        raise TrainError(f"{output} is a file, not a folder; choose another --output")
    if has_checkpoints(output):
        if not resume:
            raise TrainError(
                f"{output} holds checkpoints of an unfinished run; pass --resume to continue "
                "it, or choose another --output"
            )
        checkpoint = latest_checkpoint(output)
        if checkpoint is None:
            log.warning("no complete checkpoint in %s; starting from the beginning", output)
        return checkpoint
    foreign = sorted(p.name for p in output.iterdir() if p.name not in RECORDS)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise TrainError(
            f"{output} is not empty and holds no checkpoint to resume ({shown}); nothing in "
            "it is overwritten: choose another --output"
        )
    if any(output.iterdir()):
        log.warning("%s holds a run stopped before its first checkpoint; starting it over", output)
    return None


def latest_checkpoint(output: Path) -> Path | None:
    """The newest complete checkpoint (trainer_state.json is written last)."""
    root = Path(output) / CHECKPOINTS
    done = [
        p
        for p in root.glob("checkpoint-*")
        if (p / "trainer_state.json").is_file() and p.name.split("-")[-1].isdigit()
    ]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)
