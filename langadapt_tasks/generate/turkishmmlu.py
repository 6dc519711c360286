"""The TurkishMMLU task YAMLs: one task per subject, the four category groups, the top group."""

from __future__ import annotations

from langadapt_tasks.benchmarks.turkishmmlu_subjects import (
    CATEGORIES,
    SUBJECTS,
    TURKISHMMLU_GROUP,
    subjects_in,
    turkishmmlu_task_name,
)
from langadapt_tasks.generate.render import group_config

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
    for category in CATEGORIES:
        files[f"_{TURKISHMMLU_GROUP}_{category}.yaml"] = group_config(
            f"{TURKISHMMLU_GROUP}_{category}",
            [turkishmmlu_task_name(s) for s in subjects_in(category)],
            AGGREGATES,
            alias=category,
        )
    files[f"_{TURKISHMMLU_GROUP}.yaml"] = group_config(
        TURKISHMMLU_GROUP, [f"{TURKISHMMLU_GROUP}_{c}" for c in CATEGORIES], AGGREGATES
    )
    return files
