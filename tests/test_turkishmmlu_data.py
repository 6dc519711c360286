"""TurkishMMLU data: the local layout, bad questions, where the data comes from, the YAMLs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from langadapt_tasks.benchmarks import turkishmmlu as tmmlu
from langadapt_tasks.benchmarks.turkishmmlu_subjects import CATEGORIES, SUBJECTS, subjects_in
from langadapt_tasks.generate import remove_stale, write_all
from langadapt_tasks.generate.render import render
from langadapt_tasks.generate.turkishmmlu import turkishmmlu_configs

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "turkishmmlu"
# The nine file names of the TurkishMMLU repository (ArdaYueksel/TurkishMMLU, dev/ and test/).
REPO_FILES = {
    "TurkishMMLU_Biology.json",
    "TurkishMMLU_Chemistry.json",
    "TurkishMMLU_Geography.json",
    "TurkishMMLU_History.json",
    "TurkishMMLU_Mathematics.json",
    "TurkishMMLU_Philosophy.json",
    "TurkishMMLU_Physics.json",
    "TurkishMMLU_Religion and Ethics.json",
    "TurkishMMLU_Turkish Language and Literature.json",
}


def test_subject_table_matches_the_repository_layout() -> None:
    assert {s.file_name for s in SUBJECTS.values()} == REPO_FILES
    for split in ("dev", "test"):
        assert {p.name for p in (FIXTURE / split).glob("*.json")} == REPO_FILES
    # The Hub dataset's config names (its README's configs).
    assert SUBJECTS["religion_and_ethics"].hub_config == "Religion_and_Ethics"
    assert SUBJECTS["turkish_language_and_literature"].hub_config == (
        "Turkish_Language_and_Literature"
    )
    # The paper's four categories: 3 + 1 + 1 + 4 subjects, each subject once.
    sizes = {c: len(subjects_in(c)) for c in CATEGORIES}
    assert sizes == {
        "natural_sciences": 3,
        "math": 1,
        "language": 1,
        "social_sciences_and_humanities": 4,
    }


def test_local_files_load_as_written() -> None:
    parts = tmmlu.load_subject("biology", turkishmmlu_dir=str(FIXTURE))
    raw = {
        split: json.loads((FIXTURE / split / "TurkishMMLU_Biology.json").read_text("utf-8"))
        for split in ("dev", "test")
    }
    assert {k: len(v) for k, v in parts.items()} == {"test": 3, "dev": 5}
    for split in ("dev", "test"):
        assert list(parts[split]) == raw[split]  # order and text as in the file
    assert parts["test"][0]["question"].startswith("   ")  # kept; the prompt strips it


def test_local_dir_from_metadata_then_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(tmmlu.ENV_DIR, str(FIXTURE))
    assert tmmlu.data_dir() == FIXTURE
    assert tmmlu.data_dir({tmmlu.METADATA_DIR: str(tmp_path)}) == tmp_path
    monkeypatch.setenv(tmmlu.ENV_DIR, str(tmp_path / "nope"))
    with pytest.raises(tmmlu.TurkishMMLUDataError, match=r"LANGADAPT_TURKISHMMLU_DIR=.*no such"):
        tmmlu.load_subject("physics")
    assert "no such directory" in (tmmlu.availability() or "")
    monkeypatch.setenv(tmmlu.ENV_DIR, str(FIXTURE))
    assert tmmlu.availability() is None


def _copy_with(tmp_path: Path, split: str, index: int, change: dict) -> Path:
    root = tmp_path / "tmmlu"
    for part in ("dev", "test"):
        (root / part).mkdir(parents=True)
        for path in (FIXTURE / part).glob("*.json"):
            (root / part / path.name).write_bytes(path.read_bytes())
    path = root / split / "TurkishMMLU_History.json"
    rows = json.loads(path.read_text("utf-8"))
    rows[index] = {**rows[index], **change}
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=4), "utf-8")
    return root


@pytest.mark.parametrize(
    ("split", "index", "change", "message"),
    [
        ("test", 2, {"answer": "F"}, r"question index 2: answer 'F' is not one of A, B, C, D, E"),
        ("dev", 4, {"answer": 3}, r"question index 4: answer 3 is not one of"),
        ("test", 1, {"choices": ["a", "b", "c", "d"]}, r"question index 1: 'choices' has 4"),
        ("dev", 0, {"choices": ["a"] * 6}, r"question index 0: 'choices' has 6 entries"),
        ("test", 0, {"question": None}, r"question index 0: missing field\(s\) \['question'\]"),
    ],
)
def test_malformed_question_names_file_and_index(
    tmp_path: Path, split: str, index: int, change: dict, message: str
) -> None:
    root = _copy_with(tmp_path, split, index, change)
    with pytest.raises(tmmlu.TurkishMMLUDataError) as err:
        tmmlu.load_subject("history", turkishmmlu_dir=str(root))
    assert f"{split}/TurkishMMLU_History.json, " in str(err.value).replace(os.sep, "/")
    assert err.match(message)


def test_broken_json_and_missing_file_are_named(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(tmmlu.TurkishMMLUDataError, match=r"TurkishMMLU_Physics\.json not found"):
        tmmlu.load_subject("physics", turkishmmlu_dir=str(tmp_path))
    (tmp_path / "test" / "TurkishMMLU_Physics.json").write_text('[\n  {"question": "x",\n', "utf-8")
    (tmp_path / "dev" / "TurkishMMLU_Physics.json").write_text("[]", "utf-8")
    with pytest.raises(tmmlu.TurkishMMLUDataError, match=r"Physics\.json, line 3: not JSON"):
        tmmlu.load_subject("physics", turkishmmlu_dir=str(tmp_path))


# Task building in a fresh interpreter with the Hub off (read by datasets at import).
_BUILD = """
import sys
from lm_eval.tasks import TaskManager
from langadapt_tasks.paths import task_dir
manager = TaskManager(include_path=str(task_dir()), include_defaults=False)
try:
    manager.load(["turkishmmlu_langadapt"])
except Exception as err:
    print(f"{type(err).__name__}: {err}")
    sys.exit(3)
"""


def test_no_local_copy_and_no_hub_stops_task_building_naming_both_ways() -> None:
    env = {k: v for k, v in os.environ.items() if k != tmmlu.ENV_DIR}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    text = proc.stdout
    assert "TurkishMMLUDataError" in text and "AYueksel/TurkishMMLU" in text
    assert "LANGADAPT_TURKISHMMLU_DIR" in text and "turkishmmlu_dir" in text
    assert "--metadata" in text
    assert tmmlu.availability(env).startswith("no local copy")


def test_generated_yamls_are_up_to_date() -> None:
    root = REPO / "task_yamls" / "turkishmmlu"
    expected = turkishmmlu_configs()
    for name, config in expected.items():
        path = root / name
        assert path.is_file(), f"{path} missing: run `langadapt generate-yamls`"
        assert path.read_text(encoding="utf-8") == render(config), f"{path} is stale"
    stray = {p.name for p in root.glob("*.yaml")} - set(expected)
    assert not stray, f"YAMLs not produced by the generator: {stray}"


def test_regenerating_writes_the_checked_in_files_and_removes_stale_ones(tmp_path: Path) -> None:
    out = tmp_path / "task_yamls"
    # A file an earlier generation wrote (e.g. a language spec's own task, since switched to
    # an lm-eval task name), and a hand-written one that must stay.
    (out / "mtbench").mkdir(parents=True)
    stale = out / "mtbench" / "mc_langadapt_tr.yaml"
    stale.write_text(render({"task": "mc_langadapt_tr"}), encoding="utf-8")
    own = out / "mtbench" / "notes.yaml"
    own.write_text("task: mine\n", encoding="utf-8")
    written = write_all(out)
    assert not stale.exists() and own.exists()
    for path in written:  # byte for byte what is checked in, CMMLU and MT-Bench included
        checked_in = REPO / "task_yamls" / path.relative_to(out)
        assert path.read_bytes() == checked_in.read_bytes(), checked_in
    assert {p.relative_to(out).parts[0] for p in written} == {
        "cmmlu",
        "heldout",
        "mmlu",
        "mtbench",
        "turkishmmlu",
    }
    assert remove_stale(out / "turkishmmlu", set()) and not list(
        (out / "turkishmmlu").glob("*.yaml")
    )
