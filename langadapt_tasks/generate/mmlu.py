"""The English MMLU task YAMLs: one task per subject, the four category groups, the top group,
named and described as lm-eval's ``mmlu`` (``mmlu_<subject>`` -> ``mmlu_langadapt_<subject>``)."""

from __future__ import annotations

from langadapt_tasks.benchmarks.mmlu_subjects import (
    CATEGORIES,
    MMLU_GROUP,
    SUBJECTS,
    description,
    mmlu_task_name,
    subjects_in,
)
from langadapt_tasks.generate.render import group_config

TEMPLATE = "_default_template_yaml"  # written by hand: lm-eval's prompt
AGGREGATES = [{"metric": "acc", "aggregation": "mean", "weight_by_size": True}]


def mmlu_configs() -> dict[str, dict]:
    """File name -> YAML content: subject tasks, category groups and ``mmlu_langadapt``."""
    files: dict[str, dict] = {}
    for subject in SUBJECTS:
        task = mmlu_task_name(subject)
        files[f"{task}.yaml"] = {
            "include": TEMPLATE,
            "task": task,
            "task_alias": subject,
            "dataset_kwargs": {"mmlu_subject": subject},
            "description": description(subject),
        }
    for category in CATEGORIES:
        files[f"_{MMLU_GROUP}_{category}.yaml"] = group_config(
            f"{MMLU_GROUP}_{category}",
            [mmlu_task_name(s) for s in subjects_in(category)],
            AGGREGATES,
            alias=category,
        )
    files[f"_{MMLU_GROUP}.yaml"] = group_config(
        MMLU_GROUP, [f"{MMLU_GROUP}_{c}" for c in CATEGORIES], AGGREGATES
    )
    return files
