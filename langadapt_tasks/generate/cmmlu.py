"""The CMMLU task YAMLs: one task per subject, category groups and the top group."""

from __future__ import annotations

from langadapt_tasks.benchmarks.cmmlu_subjects import (
    CATEGORIES,
    CMMLU_GROUP,
    CMMLU_LMEVAL_GROUP,
    PROMPT_HEADER,
    SUBJECTS,
    cmmlu_task_name,
    subjects_in,
)
from langadapt_tasks.generate.render import category_groups

# CMMLU's code leaves the instruction out when the question alone passes the
# token budget (``shot_budget`` < 0, set by the loader).
PROTOCOL_DESCRIPTION = "{{% if shot_budget is none or shot_budget >= 0 %}}{header}{{% endif %}}"
AGGREGATES = [
    {"metric": m, "aggregation": "mean", "weight_by_size": True} for m in ("acc", "acc_norm")
]


def _family(group: str, template: str, description: str) -> dict[str, dict]:
    """File name -> YAML content for one family's subject tasks and groups."""
    files: dict[str, dict] = {}
    for subject in SUBJECTS.values():
        files[f"{cmmlu_task_name(subject.name, group)}.yaml"] = {
            "include": template,
            "task": cmmlu_task_name(subject.name, group),
            "task_alias": subject.name,
            "dataset_kwargs": {"cmmlu_subject": subject.name},
            "description": description.format(header=PROMPT_HEADER.format(subject=subject.name_zh)),
        }
    members = {c: [cmmlu_task_name(s, group) for s in subjects_in(c)] for c in CATEGORIES}
    return {**files, **category_groups(group, members, AGGREGATES)}


def cmmlu_configs() -> dict[str, dict]:
    """File name -> YAML content for both CMMLU families: CMMLU's own protocol
    (``cmmlu_langadapt``) and lm-eval's ``cmmlu`` format (``cmmlu_langadapt_lmeval``)."""
    return {
        **_family(CMMLU_GROUP, "_default_template_yaml", PROTOCOL_DESCRIPTION),
        **_family(CMMLU_LMEVAL_GROUP, "_lmeval_template_yaml", "{header}"),
    }
