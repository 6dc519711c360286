"""The installed cmmlu_langadapt tasks as lm-eval builds them (no model needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import task_manager
from lm_eval.tasks import TaskManager

from langadapt_tasks.benchmarks.cmmlu_subjects import CATEGORIES, SUBJECTS
from langadapt_tasks.paths import task_dir

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
    # langadapt's tasks only (test_packaging checks lm-eval's default scan finds them).
    return task_manager(cmmlu_dir=str(cmmlu_dir)).load([GROUP])


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


def test_five_shot_prompt_is_cmmlus_own(loaded, cmmlu_dir: Path) -> None:
    task = loaded["tasks"][f"{GROUP}_arts"]
    assert task.config.num_fewshot == 5
    doc = task.test_docs()[0]
    prompt = task.fewshot_context(doc=doc, num_fewshot=5)
    with (cmmlu_dir / "dev" / "arts.csv").open(encoding="utf-8") as fh:
        dev = list(csv.DictReader(fh))
    # CMMLU's src/mp_utils.py: instruction, then format_example per shot and question.
    shots = "".join(
        f"题目：{r['Question']}\nA. {r['A']}\nB. {r['B']}\nC. {r['C']}\nD. {r['D']}"
        f"\n答案是：{r['Answer']}\n\n"
        for r in dev[:5]
    )
    question = (
        f"题目：{doc['Question']}\nA. {doc['A']}\nB. {doc['B']}\nC. {doc['C']}\nD. {doc['D']}"
        "\n答案是："
    )
    assert (
        prompt == "以下是关于艺术学的单项选择题，请直接给出正确答案的选项。\n\n" + shots + question
    )
    assert task.doc_to_choice(doc) == ["A", "B", "C", "D"]
    assert task.doc_to_target(doc) == "ABCD".index(doc["Answer"])


def test_lmeval_format_family_is_lm_evals_cmmlu(cmmlu_dir: Path, tmp_path: Path) -> None:
    """cmmlu_langadapt_lmeval_<subject> builds lm-eval's own cmmlu_<subject> requests."""
    import lm_eval.tasks
    import yaml

    builtin = Path(lm_eval.tasks.__file__).parent / "cmmlu" / "cmmlu_arts.yaml"
    data = {s: str(cmmlu_dir / s / "arts.csv") for s in ("test", "dev")}
    (tmp_path / "ref.yaml").write_text(
        yaml.safe_dump(
            {
                "include": str(builtin),
                "task": "ref_cmmlu_arts",
                "num_fewshot": 5,  # what lm_eval --num_fewshot 5 sets
                "dataset_path": "csv",
                "dataset_name": None,
                "dataset_kwargs": {"data_files": data},
            }
        )
    )
    manager = TaskManager(
        include_path=[str(tmp_path), str(task_dir())],
        include_defaults=False,
        metadata={"cmmlu_dir": str(cmmlu_dir)},
    )
    tasks = manager.load(["ref_cmmlu_arts", "cmmlu_langadapt_lmeval_arts"])["tasks"]
    ref, ours = tasks["ref_cmmlu_arts"], tasks["cmmlu_langadapt_lmeval_arts"]
    for task in (ref, ours):
        task.build_all_requests(limit=None, rank=0, world_size=1)
    assert [i.args for i in ours.instances] == [i.args for i in ref.instances]
    assert len(ours.instances) == 4 * 160 and ours.instances[0].args[1] == " A"
    assert loaded_groups(manager, "cmmlu_langadapt_lmeval") == [
        f"cmmlu_langadapt_lmeval_{c}" for c in CATEGORIES
    ]


def loaded_groups(manager: TaskManager, group: str) -> list[str]:
    return manager.load([group])["group_map"][group]


def test_choices_are_single_tokens_after_a_shared_context(loaded, smollm2_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    task = loaded["tasks"][f"{GROUP}_college_law"]
    for doc in list(task.test_docs())[:20]:
        context = task.fewshot_context(doc=doc, num_fewshot=5)
        assert context.endswith("\n答案是：")
        context_ids = tokenizer.encode(context, add_special_tokens=False)
        for letter in "ABCD":
            whole = tokenizer.encode(context + letter, add_special_tokens=False)
            assert whole[: len(context_ids)] == context_ids
            assert len(whole) == len(context_ids) + 1
