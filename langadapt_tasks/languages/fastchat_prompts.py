"""FastChat's judge prompt files (``judge_prompts.jsonl``), read and checked."""

from __future__ import annotations

import functools
from pathlib import Path

from langadapt_tasks.files import iter_jsonl
from langadapt_tasks.languages.rubric_registry import from_source

# The prompts the rubrics of source "judge_prompts" send (FastChat's ``run_judge_single``:
# single-v1, single-math-v1; ``run_judge_pair``: pair-v2, pair-math-v1; and their
# -multi-turn variants).
FASTCHAT_PROMPTS: tuple[str, ...] = tuple(
    dict.fromkeys(p for r in from_source("judge_prompts") for p in r.fastchat_prompt_names())
)


@functools.cache
def read_fastchat_prompts(path: Path) -> dict[str, dict[str, str]]:
    """FastChat's ``load_judge_prompts``: name -> prompt, checked for what we use."""
    prompts: dict[str, dict[str, str]] = {}
    for number, row in iter_jsonl(path, ValueError):
        if "name" not in row:
            raise ValueError(f"{path}, line {number}: not a judge prompt (no 'name')")
        prompts[str(row["name"])] = row
    fields = {"question", "answer", "question_1", "question_2", "answer_1", "answer_2"}
    fields |= {"answer_a", "answer_b", "answer_a_1", "answer_a_2", "answer_b_1", "answer_b_2"}
    refs = {"ref_answer_1": "", "ref_answer_2": ""}
    for name in FASTCHAT_PROMPTS:
        row = prompts.get(name)
        if row is None:
            raise ValueError(f"{path}: no judge prompt named {name!r} (FastChat's layout)")
        if not all(isinstance(row.get(k), str) for k in ("system_prompt", "prompt_template")):
            raise ValueError(f"{path}: {name}: system_prompt and prompt_template must be text")
        try:
            row["prompt_template"].format(**dict.fromkeys(fields, ""), **refs)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"{path}: {name}: prompt_template has a bad field ({err!r})") from None
    return prompts
