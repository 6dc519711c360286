"""Generate the task YAMLs in ``task_yamls/`` (like lm-eval's ``_generate_configs.py``).

Run ``langadapt generate-yamls`` after changing a subject table or a shipped
language spec; a test checks that the checked-in files match what this writes.
A generated file (one starting with ``render.HEADER``) that the generators no longer
produce is removed; the hand-written templates are left alone.
"""

from __future__ import annotations

from pathlib import Path

from langadapt_tasks.generate.cmmlu import cmmlu_configs
from langadapt_tasks.generate.mtbench import mtbench_configs
from langadapt_tasks.generate.render import remove_stale, render
from langadapt_tasks.generate.turkishmmlu import turkishmmlu_configs


def write_all(root: Path) -> list[Path]:
    """Write every generated YAML under ``root`` (the ``task_yamls`` directory)."""
    written = []
    for folder, configs in (
        ("cmmlu", cmmlu_configs()),
        ("mtbench", mtbench_configs()),
        ("turkishmmlu", turkishmmlu_configs()),
    ):
        for name, config in configs.items():
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(config), encoding="utf-8")
            written.append(path)
        remove_stale(root / folder, set(configs))
    return written
