"""The per-language held-out loss tasks, ``heldout_langadapt_<code>``, generated from the
language specs (``_heldout_yaml`` is the hand-written template they include)."""

from __future__ import annotations

from langadapt_tasks.benchmarks.heldout import task_name
from langadapt_tasks.languages.spec import LanguageSpec, builtin_specs

TEMPLATE = "_heldout_yaml"


def heldout_config(spec: LanguageSpec) -> dict[str, dict]:
    """File name -> YAML content of one language's held-out task."""
    kwargs: dict[str, str] = {"heldout_language": spec.code}
    if not spec.builtin:
        kwargs["heldout_spec"] = str(spec.path)
    name = task_name(spec.code)
    return {f"{name}.yaml": {"include": TEMPLATE, "task": name, "dataset_kwargs": kwargs}}


def heldout_configs() -> dict[str, dict]:
    """File name -> YAML content for the shipped languages."""
    files: dict[str, dict] = {}
    for spec in builtin_specs().values():
        files.update(heldout_config(spec))
    return files
