"""Where the study writes: adapters, each model's evaluation folder and its lm_eval runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langadapt_tasks.study.config import StudyConfig
from langadapt_tasks.study.grid import label

TURN2_DIR = "turn2"
MTBENCH_DIR = "mtbench"
KNOWLEDGE_DIR = "knowledge"
HELDOUT_DIR = "heldout"


def adapter_dir(cfg: StudyConfig, preset: str, model: str = "", language: str = "") -> Path:
    """Where a cell's adapter is trained: ``adapters/<model>/<language>/<preset>``."""
    return cfg.output / "adapters" / label(model, language, preset)


def eval_dir(cfg: StudyConfig, name: str) -> Path:
    return cfg.output / "eval" / name


@dataclass(frozen=True)
class EvalRun:
    """One ``lm_eval`` run of a model: its folder, tasks and few-shot setting. A held-out
    run (``heldout``) scores every row, renders its contexts itself and generates nothing:
    the study's ``--limit``, ``--apply_chat_template`` and ``--gen_kwargs`` do not apply."""

    name: str  # "main", "mtbench", "turn2", "knowledge" or "heldout[_<language>]"
    folder: Path
    tasks: list[str]
    num_fewshot: int | None
    metadata: dict[str, str]
    heldout: bool = False
