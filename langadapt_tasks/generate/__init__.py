"""Generate the task YAMLs in ``task_yamls/`` (like lm-eval's ``_generate_configs.py``).

Run ``langadapt generate-yamls`` after changing a subject table or a shipped
language spec; a test checks that the checked-in files match what this writes.
"""

from __future__ import annotations

from pathlib import Path

from langadapt_tasks.generate.cmmlu import cmmlu_configs
from langadapt_tasks.generate.mtbench import mtbench_configs
from langadapt_tasks.generate.render import render


def write_all(root: Path) -> list[Path]:
    """Write every generated YAML under ``root`` (the ``task_yamls`` directory)."""
    written = []
    for folder, configs in (("cmmlu", cmmlu_configs()), ("mtbench", mtbench_configs())):
        for name, config in configs.items():
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(config), encoding="utf-8")
            written.append(path)
    return written
