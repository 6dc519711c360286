"""The TurkishMMLU task YAMLs: one task per subject, the four category groups, the top group."""

from __future__ import annotations

from langadapt_tasks.benchmarks.turkishmmlu_subjects import (
    CATEGORIES,
    SUBJECTS,
    TURKISHMMLU_GROUP,
    subjects_in,
    turkishmmlu_task_name,
)
from langadapt_tasks.generate.render import category_groups

TEMPLATE = "_default_template_yaml"  # written by hand: the paper's prompt
AGGREGATES = [
    {"metric": m, "aggregation": "mean", "weight_by_size": True} for m in ("acc", "acc_norm")
]


def turkishmmlu_configs() -> dict[str, dict]:
    """File name -> YAML content: subject tasks, category groups and ``turkishmmlu_langadapt``."""
    files: dict[str, dict] = {}
    for subject in SUBJECTS.values():
        task = turkishmmlu_task_name(subject.name)
        files[f"{task}.yaml"] = {
            "include": TEMPLATE,
            "task": task,
            "task_alias": subject.name,
            "dataset_kwargs": {"turkishmmlu_subject": subject.name},
        }
    members = {c: [turkishmmlu_task_name(s) for s in subjects_in(c)] for c in CATEGORIES}
    return {**files, **category_groups(TURKISHMMLU_GROUP, members, AGGREGATES)}
