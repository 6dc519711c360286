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


# What a checkpoint of transformers' Trainer holds: its state, written last (so a checkpoint
# without it was cut short while being written), and the weights in one of the forms the
# Trainer resumes from (Trainer._load_from_checkpoint): an adapter, a whole model (one file or
# an index of shards), or FSDP's state (a pytorch_model_fsdp_* folder, or one file).
CHECKPOINT_STATE = "trainer_state.json"
WEIGHT_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "pytorch_model_fsdp.bin",
)
_FSDP_DIR = "pytorch_model_fsdp"


class TrainError(RuntimeError):
    """The run cannot start (e.g. output exists without --resume)."""


def is_finished(output: Path) -> bool:
    return (Path(output) / DONE).is_file()


def _step(path: Path) -> int | None:
    prefix, _, step = path.name.partition("-")
    return int(step) if prefix == "checkpoint" and step.isdigit() else None


def checkpoint_dirs(output: Path) -> list[Path]:
    """The ``checkpoints/checkpoint-N`` folders of a run (complete or not), newest first."""
    root = Path(output) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _step(p) is not None]
    return sorted(found, key=_step, reverse=True)


def has_checkpoints(output: Path) -> bool:
    """The run in ``output`` got as far as writing a checkpoint (complete or not)."""
    return bool(checkpoint_dirs(output))


def _has_weights(checkpoint: Path) -> bool:
    if any((checkpoint / name).is_file() for name in WEIGHT_FILES):
        return True
    return any(
        sub.is_dir()
        and (
            sub.name.startswith(_FSDP_DIR)
            or any((sub / name).is_file() for name in WEIGHT_FILES[:2])  # one adapter per folder
        )
        for sub in checkpoint.iterdir()
    )


def checkpoint_missing(checkpoint: Path) -> list[str]:
    """What a checkpoint lacks of what a checkpoint holds (empty when it is complete)."""
    missing = []
    if not (checkpoint / CHECKPOINT_STATE).is_file():
        missing.append(CHECKPOINT_STATE)
    if not _has_weights(checkpoint):
        missing.append("model weights (" + ", ".join(WEIGHT_FILES[:3]) + ", ...)")
    return missing


def _listing(folder: Path, limit: int = 6) -> str:
    """``a.json, checkpoints/checkpoint-1 (empty), ...``: what a folder holds, for messages."""
    names = []
    for item in sorted(folder.iterdir()):
        if item.is_dir() and item.name == CHECKPOINTS:
            inner = sorted(item.iterdir())
            names += [
                f"{CHECKPOINTS}/{sub.name}"
                + (" (empty)" if sub.is_dir() and not any(sub.iterdir()) else "")
                for sub in inner
            ] or [f"{CHECKPOINTS}/ (empty)"]
        else:
            names.append(item.name + ("/" if item.is_dir() else ""))
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def check_output(output: Path, resume: bool, warn: bool = True) -> Path | None:
    """Refuse an output folder this run must not write to; the checkpoint to resume from.

    - a finished run is never touched;
    - checkpoints are resumed only in a folder of ours (it holds the run's settings,
      ``langadapt_train.yaml``, written before the first checkpoint), and only with ``resume``;
    - a folder holding anything a run of ours did not write is refused (so an adapter or
      model someone put there is never overwritten);
    - a folder holding only the records a run writes before its first checkpoint is a run
      that saved no progress: it is started over.

    ``warn``: log what is skipped or started over (off for a check repeated before training).
    """
    if is_finished(output):
        raise TrainError(f"{output} already holds a finished run; choose another --output")
    if not output.exists():
        return None
    if not output.is_dir():
        raise TrainError(f"{output} is a file, not a folder; choose another --output")
    if has_checkpoints(output):
        if not (output / CONFIG_NAME).is_file():
            raise TrainError(
                f"{output} holds {CHECKPOINTS}/ but no {CONFIG_NAME}, so it is not a run of "
                f"langadapt-train (found: {_listing(output)}); nothing in it is resumed or "
                "overwritten: choose another --output"
            )
        if not resume:
            raise TrainError(
                f"{output} holds checkpoints of an unfinished run; pass --resume to continue "
                "it, or choose another --output"
            )
        return resumable_checkpoint(output, warn)
    foreign = sorted(p.name for p in output.iterdir() if p.name not in RECORDS)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise TrainError(
            f"{output} is not empty and holds no checkpoint to resume ({shown}); nothing in "
            "it is overwritten: choose another --output"
        )
    if warn and any(output.iterdir()):
        log.warning("%s holds a run stopped before its first checkpoint; starting it over", output)
    return None


def resumable_checkpoint(output: Path, warn: bool = True) -> Path:
    """The newest complete checkpoint of the run in ``output``.

    A newer checkpoint without its trainer state (written last) was cut short while being
    written, and is passed over; one with its state but without weights is damaged, and a run
    with no complete checkpoint cannot be resumed: both are errors naming the checkpoint.
    """
    skipped = []
    for checkpoint in checkpoint_dirs(output):
        missing = checkpoint_missing(checkpoint)
        if not missing:
            if skipped and warn:
                log.warning(
                    "%s (cut short while being written); resuming from %s, the newest "
                    "complete checkpoint",
                    "; ".join(skipped),
                    checkpoint.name,
                )
            return checkpoint
        what = f"{checkpoint} lacks {' and '.join(missing)}"
        if (checkpoint / CHECKPOINT_STATE).is_file():
            raise TrainError(
                f"cannot resume {output}: its checkpoint {what}, so it is damaged; nothing was "
                "changed. Restore the checkpoint, remove it to resume from an earlier one, or "
                "choose another --output"
            )
        skipped.append(what)
    raise TrainError(
        f"cannot resume {output}: it holds no complete checkpoint: {'; '.join(skipped)}. "
        f"Nothing was changed; remove {output / CHECKPOINTS} to start the run over, or choose "
        "another --output"
    )
