"""Generate the task YAMLs in ``task_yamls/`` (like lm-eval's ``_generate_configs.py``).

Run ``langadapt generate-yamls`` after changing a subject table or a shipped
language spec; a test checks that the checked-in files match what this writes.
A generated file (one starting with ``render.HEADER``) that the generators no longer
produce is removed; the hand-written templates are left alone. Each folder is written all at
once (``render.write_folder``): a failure leaves it as it was. ``scaffold`` writes a new
language's folder (``langadapt new-language``).
"""

from __future__ import annotations

from pathlib import Path

from langadapt_tasks.generate.cmmlu import cmmlu_configs
from langadapt_tasks.generate.heldout import heldout_configs
from langadapt_tasks.generate.mmlu import mmlu_configs
from langadapt_tasks.generate.mtbench import mtbench_configs
from langadapt_tasks.generate.render import remove_stale, render, write_folder
from langadapt_tasks.generate.turkishmmlu import turkishmmlu_configs

__all__ = ["remove_stale", "write_all"]


def write_all(root: Path) -> list[Path]:
    """Write every generated YAML under ``root`` (the ``task_yamls`` directory)."""
    written = []
    for folder, configs in (
        ("cmmlu", cmmlu_configs()),
        ("heldout", heldout_configs()),
        ("mmlu", mmlu_configs()),
        ("mtbench", mtbench_configs()),
        ("turkishmmlu", turkishmmlu_configs()),
    ):
        texts = {name: render(config) for name, config in configs.items()}
        written += write_folder(root / folder, texts)  # all at once, stale files removed
    return written
