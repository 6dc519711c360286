"""CMMLU data: the subject table, the loader's sources and its errors, generated YAMLs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from langadapt_tasks import cmmlu
from langadapt_tasks.cmmlu_subjects import CATEGORIES, SUBJECTS, subjects_in
from langadapt_tasks.yaml_gen import cmmlu_configs, render


def _tsv(cmmlu_dir: Path) -> list[dict[str, str]]:
    with (cmmlu_dir / "SUBJECTS.tsv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_subject_table_matches_cmmlu(cmmlu_dir: Path) -> None:
    rows = _tsv(cmmlu_dir)
    assert sorted(r["subject"] for r in rows) == sorted(SUBJECTS)
    for row in rows:
        subject = SUBJECTS[row["subject"]]
        assert subject.name_zh == row["name_zh"]
        assert set(subject.official_categories) == set(row["official_categories"].split(","))
        assert subject.partition_category == row["partition_category"]


def test_partition_covers_every_subject_once() -> None:
    seen = [s for c in CATEGORIES for s in subjects_in(c)]
    assert sorted(seen) == sorted(SUBJECTS)
    with pytest.raises(KeyError, match="unknown CMMLU category"):
        subjects_in("science")


def test_local_dir_from_env_and_metadata(cmmlu_dir: Path, monkeypatch) -> None:
    monkeypatch.delenv(cmmlu.ENV_DIR, raising=False)
    ds = cmmlu.load_subject("arts", cmmlu_dir=str(cmmlu_dir), pretrained="ignored")
    assert len(ds["test"]) == 160 and len(ds["dev"]) == 5
    assert set(ds["test"].column_names) == {"Question", "A", "B", "C", "D", "Answer"}
    monkeypatch.setenv(cmmlu.ENV_DIR, str(cmmlu_dir))
    assert len(cmmlu.load_subject("agronomy")["test"]) == 169


def _write_subject(root: Path, subject: str, test_rows: list[list[str]]) -> None:
    header = ["", "Question", "A", "B", "C", "D", "Answer"]
    good = ["0", "问题", "甲", "乙", "丙", "丁", "A"]
    for split, rows in (("dev", [good]), ("test", test_rows)):
        (root / split).mkdir(parents=True, exist_ok=True)
        with (root / split / f"{subject}.csv").open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([header, *rows])


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (["2", "问题", "甲", "乙", "丙", "", "B"], r"line 3: empty field\(s\) \['D'\]"),
        (["2", "问题", "甲", "乙", "丙", "丁", "E"], "line 3: answer 'E' is not one of A, B, C, D"),
        (["2", "问题", "甲", "乙", "丙"], r"line 3: empty field\(s\) \['D', 'Answer'\]"),
        (["2", "问题", "甲", "乙", "丙", "丁", "A", "x"], "line 3: 8 cells, expected 7"),
    ],
)
def test_malformed_row_is_an_error_naming_file_and_row(tmp_path, bad_row, message) -> None:
    good = ["1", "问题", "甲", "乙", "丙", "丁", "C"]
    _write_subject(tmp_path, "arts", [good, bad_row])
    with pytest.raises(cmmlu.CMMLUDataError, match=message) as err:
        cmmlu._from_dir(tmp_path, "arts")
    assert str(tmp_path / "test" / "arts.csv") in str(err.value)


def test_missing_subject_file_names_layout(tmp_path) -> None:
    (tmp_path / "test").mkdir()
    with pytest.raises(cmmlu.CMMLUDataError, match=r"test[/\\]arts\.csv not found.*dev/<subject>"):
        cmmlu.load_subject("arts", cmmlu_dir=str(tmp_path))


def test_missing_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(cmmlu.ENV_DIR, str(tmp_path / "nope"))
    with pytest.raises(cmmlu.CMMLUDataError, match=r"LANGADAPT_CMMLU_DIR=.*no such directory"):
        cmmlu.load_subject("arts")


def test_no_local_data_and_no_hub_names_both_ways(monkeypatch) -> None:
    monkeypatch.delenv(cmmlu.ENV_DIR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(cmmlu, "_load", cmmlu._load.__wrapped__)  # no cached result
    with pytest.raises(cmmlu.CMMLUDataError) as err:
        cmmlu.load_subject("virology")
    text = str(err.value)
    assert "haonan-li/cmmlu" in text
    assert "LANGADAPT_CMMLU_DIR" in text and "--metadata" in text and "cmmlu_dir" in text


def test_generated_yamls_are_up_to_date() -> None:
    root = Path(__file__).resolve().parent.parent / "task_yamls" / "cmmlu"
    expected = cmmlu_configs()
    for name, config in expected.items():
        path = root / name
        assert path.is_file(), f"{path} missing: run `langadapt generate-yamls`"
        assert path.read_text(encoding="utf-8") == render(config), (
            f"{path} is stale: run `langadapt generate-yamls`"
        )
    stray = {p.name for p in root.glob("*.yaml")} - set(expected)
    assert not stray, f"YAMLs not produced by the generator: {stray}"
