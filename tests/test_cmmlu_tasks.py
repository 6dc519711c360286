"""The installed cmmlu_langadapt tasks as lm-eval builds them (no model needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from lm_eval.tasks import TaskManager

from langadapt_tasks.cmmlu_subjects import CATEGORIES, SUBJECTS

GROUP = "cmmlu_langadapt"
# Test-split sizes of the five disjoint categories, from CMMLU's data.
CATEGORY_SIZES = {
    "stem": 2531,
    "humanities": 1962,
    "social_science": 2260,
    "other": 2257,
    "china_specific": 2572,
}


@pytest.fixture(scope="module")
def loaded(cmmlu_dir: Path) -> dict:
    # Default task scan only: the YAMLs must be where `pip install .` put them.
    manager = TaskManager(metadata={"cmmlu_dir": str(cmmlu_dir)})
    return manager.load([GROUP])


def test_group_structure(loaded) -> None:
    group_map = loaded["group_map"]
    assert group_map[GROUP] == [f"{GROUP}_{c}" for c in CATEGORIES]
    members = {c: group_map[f"{GROUP}_{c}"] for c in CATEGORIES}
    flat = [t for tasks in members.values() for t in tasks]
    assert len(flat) == len(set(flat)) == 67
    for category, tasks in members.items():
        for task in tasks:
            subject = SUBJECTS[task.removeprefix(f"{GROUP}_")]
            assert subject.partition_category == category


def test_sizes_from_task_objects(loaded, cmmlu_dir: Path) -> None:
    with (cmmlu_dir / "SUBJECTS.tsv").open(encoding="utf-8") as fh:
        expected = {r["subject"]: int(r["test_rows"]) for r in csv.DictReader(fh, delimiter="\t")}
    tasks = loaded["tasks"]
    sizes = {name.removeprefix(f"{GROUP}_"): len(t.test_docs()) for name, t in tasks.items()}
    assert sizes == expected
    per_category = {
        c: sum(sizes[t.removeprefix(f"{GROUP}_")] for t in loaded["group_map"][f"{GROUP}_{c}"])
        for c in CATEGORIES
    }
    assert per_category == CATEGORY_SIZES
    assert sum(per_category.values()) == 11582


def test_five_shot_prompt_in_chinese(loaded, cmmlu_dir: Path) -> None:
    task = loaded["tasks"][f"{GROUP}_arts"]
    assert task.config.num_fewshot == 5
    doc = task.test_docs()[0]
    prompt = task.fewshot_context(doc, num_fewshot=5)
    assert prompt.startswith("以下是关于艺术学的单项选择题，请直接给出正确答案的选项。\n\n")
    with (cmmlu_dir / "dev" / "arts.csv").open(encoding="utf-8") as fh:
        dev = list(csv.DictReader(fh))
    # The first five dev questions, in order, each followed by its answer letter.
    positions = [prompt.index(f"{row['Question']}\nA. {row['A']}") for row in dev[:5]]
    assert positions == sorted(positions)
    for row in dev[:5]:
        assert f"D. {row['D']}\n答案：{row['Answer']}\n\n" in prompt
    assert prompt.endswith(
        f"{doc['Question']}\nA. {doc['A']}\nB. {doc['B']}\nC. {doc['C']}\nD. {doc['D']}\n答案："
    )
    assert task.doc_to_choice(doc) == ["A", "B", "C", "D"]
    assert task.doc_to_target(doc) == "ABCD".index(doc["Answer"])


def test_choices_are_single_tokens_after_a_shared_context(loaded, smollm2_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    task = loaded["tasks"][f"{GROUP}_college_law"]
    for doc in list(task.test_docs())[:20]:
        context = task.fewshot_context(doc, num_fewshot=5)
        context_ids = tokenizer.encode(context, add_special_tokens=False)
        for letter in "ABCD":
            whole = tokenizer.encode(context + letter, add_special_tokens=False)
            assert whole[: len(context_ids)] == context_ids
            assert len(whole) == len(context_ids) + 1
