"""The turkishmmlu_langadapt tasks as lm-eval builds them (no model needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import task_manager
from lm_eval.tasks import TaskManager

from langadapt_tasks.paths import task_dir

GROUP = "turkishmmlu_langadapt"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "turkishmmlu"
CATEGORY_GROUPS = {
    f"{GROUP}_natural_sciences": ["biology", "chemistry", "physics"],
    f"{GROUP}_math": ["mathematics"],
    f"{GROUP}_language": ["turkish_language_and_literature"],
    f"{GROUP}_social_sciences_and_humanities": [
        "geography",
        "history",
        "philosophy",
        "religion_and_ethics",
    ],
}


@pytest.fixture(scope="module")
def loaded() -> dict:
    return task_manager(turkishmmlu_dir=str(FIXTURE)).load([GROUP])


def test_ls_lists_the_group_its_categories_and_subjects() -> None:
    listing = task_manager().list_all_tasks()  # the table `lm_eval ls tasks` prints
    for name in [GROUP, *CATEGORY_GROUPS, f"{GROUP}_religion_and_ethics"]:
        assert re.search(rf"^\|{name} *\|", listing, re.M), name


def test_group_structure_and_size_weighting(loaded) -> None:
    group_map = loaded["group_map"]
    assert group_map[GROUP] == list(CATEGORY_GROUPS)
    for group, subjects in CATEGORY_GROUPS.items():
        assert group_map[group] == [f"{GROUP}_{s}" for s in subjects]
    for name in [GROUP, *CATEGORY_GROUPS]:
        path = task_dir() / "turkishmmlu" / f"_{name}.yaml"
        aggregates = yaml.safe_load(path.read_text(encoding="utf-8"))["aggregate_metric_list"]
        assert aggregates == [
            {"metric": m, "aggregation": "mean", "weight_by_size": True}
            for m in ("acc", "acc_norm")
        ]
    tasks = loaded["tasks"]
    assert len(tasks) == 9 and all(len(t.test_docs()) == 3 for t in tasks.values())


def test_five_shot_prompt_is_the_papers_format(loaded) -> None:
    task = loaded["tasks"][f"{GROUP}_physics"]
    assert task.config.num_fewshot == 5
    doc = task.test_docs()[2]
    # TurkishMMLU's lm-eval configuration (the paper's evaluation): "Soru: " and the
    # stripped question, options A-E, "Cevap:", the letter after a space; shots are the
    # first five dev questions in file order, separated by a blank line; no instruction.
    assert task.fewshot_context(doc=doc, num_fewshot=5) == (
        "Soru: Kuvvetin birimi nedir?\nA. Joule\nB. Newton\nC. Watt\nD. Pascal\nE. Volt\n"
        "Cevap: B\n\n"
        "Soru: Işığın boşluktaki hızı yaklaşık kaç km/s'dir?\nA. 3 000\nB. 30 000\n"
        "C. 300 000\nD. 3 000 000\nE. 300\nCevap: C\n\n"
        "Soru: Elektrik akımının birimi hangisidir?\nA. Amper\nB. Ohm\nC. Volt\nD. Coulomb\n"
        "E. Tesla\nCevap: A\n\n"
        "Soru: Serbest düşmede cismin ivmesi neye eşittir?\nA. Sıfıra\n"
        "B. Yer çekimi ivmesine\nC. Hıza\nD. Kütleye\nE. Ağırlığa\nCevap: B\n\n"
        "Soru: Enerjinin birimi hangisidir?\nA. Newton\nB. Watt\nC. Joule\nD. Hertz\n"
        "E. Kelvin\nCevap: C\n\n"
        "Soru: Bir cismin kütlesi 2 kg ise ağırlığı yaklaşık kaç N'dur? (g = 10)\nA. 2\nB. 5\n"
        "C. 10\nD. 20\nE. 40\nCevap:"
    )
    assert task.doc_to_choice(doc) == ["A", "B", "C", "D", "E"]
    assert task.doc_to_target(doc) == 3  # "D"
    # --num_fewshot N takes the first N dev questions.
    two = task.fewshot_context(doc=doc, num_fewshot=2)
    assert two.count("Soru: ") == 3 and "Elektrik" not in two


def test_requests_equal_lm_evals_own_turkishmmlu_with_five_shots(tmp_path: Path) -> None:
    """lm-eval's turkishmmlu_<subject> (the authors' configuration), read from the same
    files and run 5-shot, makes exactly our requests."""
    import lm_eval.tasks

    builtin = Path(lm_eval.tasks.__file__).parent / "turkishmmlu" / "config" / "History.yaml"
    files = {s: str(FIXTURE / s / "TurkishMMLU_History.json") for s in ("test", "dev")}
    (tmp_path / "ref.yaml").write_text(
        yaml.safe_dump(
            {
                "include": str(builtin),
                "task": "ref_turkishmmlu_history",
                "num_fewshot": 5,  # what lm_eval --num_fewshot 5 sets
                "dataset_path": "json",
                "dataset_name": None,
                "dataset_kwargs": {"data_files": files},
            }
        )
    )
    manager = TaskManager(
        include_path=[str(tmp_path), str(task_dir())],
        include_defaults=False,
        metadata={"turkishmmlu_dir": str(FIXTURE)},
    )
    tasks = manager.load(["ref_turkishmmlu_history", f"{GROUP}_history"])["tasks"]
    ref, ours = tasks["ref_turkishmmlu_history"], tasks[f"{GROUP}_history"]
    for task in (ref, ours):
        task.build_all_requests(limit=None, rank=0, world_size=1)
    assert [i.args for i in ours.instances] == [i.args for i in ref.instances]
    assert len(ours.instances) == 5 * 3 and ours.instances[0].args[1] == " A"


def test_choices_are_single_tokens_after_a_shared_context(loaded, smollm2_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    for name in (f"{GROUP}_mathematics", f"{GROUP}_turkish_language_and_literature"):
        task = loaded["tasks"][name]
        for doc in task.test_docs():
            context = task.fewshot_context(doc=doc, num_fewshot=5)
            assert context.endswith("\nCevap:")
            context_ids = tokenizer.encode(context, add_special_tokens=False)
            for letter in "ABCDE":
                whole = tokenizer.encode(context + " " + letter, add_special_tokens=False)
                assert whole[: len(context_ids)] == context_ids
                assert len(whole) == len(context_ids) + 1


def test_fixture_is_in_the_repository_json_style() -> None:
    """4-space indent, no space after ':' (as the repository's files are written)."""
    path = FIXTURE / "dev" / "TurkishMMLU_Biology.json"
    text = path.read_text(encoding="utf-8")
    assert text.startswith('[\n    {\n        "question":"')
    assert '"choices":[\n            "' in text and '"answer":"' in text
    assert json.loads(text)[0].keys() == {"question", "choices", "answer"}
