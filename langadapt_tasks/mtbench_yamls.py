"""The MT-Bench task YAMLs (``task_yamls/mtbench/``), written by ``langadapt generate-yamls``.

Per language and turn: one task per MT-Bench category and a group over them,
so lm-eval's table shows each category and the language's mean.
"""

from __future__ import annotations

from langadapt_tasks.mtbench_data import CATEGORIES, LANGS
from langadapt_tasks.mtbench_task import SYSTEM_PROMPTS, group_name

# lm-eval can only average across a group's tasks; judge_unscored is a count, so it is
# reported per category (and in the log and the verdict file per language).
AGGREGATES = [
    {"metric": m, "aggregation": "mean", "weight_by_size": True}
    for m in ("judge_score", "lang_fidelity")
]


def mtbench_configs() -> dict[str, dict]:
    """File name -> YAML content for the MT-Bench category tasks and groups."""
    files: dict[str, dict] = {}
    for lang in LANGS:
        for turn in (1, 2):
            group = group_name(lang, turn)
            for category in CATEGORIES:
                files[f"{group}_{category}.yaml"] = {
                    "include": "_mtbench_turn1_yaml" if turn == 1 else "_mtbench_turn2_yaml",
                    "task": f"{group}_{category}",
                    "task_alias": category,
                    "dataset_kwargs": {
                        "mtbench_lang": lang,
                        "mtbench_category": category,
                        "mtbench_turn": turn,
                    },
                    "description": SYSTEM_PROMPTS[lang] + "\n\n",
                }
            files[f"_{group}.yaml"] = {
                "group": group,
                "task": [f"{group}_{c}" for c in CATEGORIES],
                "aggregate_metric_list": AGGREGATES,
                "metadata": {"version": 1.0},
            }
    return files
