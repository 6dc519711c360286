"""CMMLU data: the subject table, the loader's sources and its errors, generated YAMLs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from langadapt_tasks.benchmarks import cmmlu
from langadapt_tasks.benchmarks.cmmlu_subjects import CATEGORIES, SUBJECTS, subjects_in
from langadapt_tasks.cmmlu.hooks import load_protocol_subject
from langadapt_tasks.generate.cmmlu import cmmlu_configs
from langadapt_tasks.generate.render import render


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
    protocol = load_protocol_subject("arts", cmmlu_dir=str(cmmlu_dir))
    assert protocol["test"]["shot_budget"] == [None] * 160  # no tokenizer: no shot dropped
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


def _records(n: int) -> list[str]:
    return [f"{i},问题{i},甲,乙,丙,丁,{'ABCD'[i % 4]}" for i in range(n)]


def _write_text(root: Path, subject: str, test_text: bytes) -> Path:
    for split in ("dev", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
    header = ",Question,A,B,C,D,Answer"
    (root / "dev" / f"{subject}.csv").write_text("\n".join([header, *_records(5)]) + "\n")
    path = root / "test" / f"{subject}.csv"
    path.write_bytes(test_text)
    return path


def test_unclosed_quote_is_an_error_naming_file_and_line(tmp_path) -> None:
    # Issue 10 item 7: one unclosed quote used to swallow the records after it.
    lines = [",Question,A,B,C,D,Answer", *_records(160)]
    lines[40] = lines[40].replace("问题39", '"问题39')  # opened, never closed
    path = _write_text(tmp_path, "arts", ("\n".join(lines) + "\n").encode())
    with pytest.raises(cmmlu.CMMLUDataError, match=r"line 41: unclosed .*quote") as err:
        cmmlu.read_csv(path)
    assert str(path) in str(err.value)


def test_quote_closed_far_below_is_an_error(tmp_path) -> None:
    lines = [",Question,A,B,C,D,Answer", *_records(160)]
    lines[40] = lines[40].replace("问题39", '"问题39')
    lines[99] = lines[99].replace("问题98", '问题98"')  # the quote closes 59 lines later
    path = _write_text(tmp_path, "arts", ("\n".join(lines) + "\n").encode())
    with pytest.raises(cmmlu.CMMLUDataError, match=r"arts\.csv, line 41: unclosed quote"):
        cmmlu.read_csv(path)


def test_quote_closed_in_the_next_question_is_an_error_naming_both_lines(tmp_path) -> None:
    # Issue 20 item 2: question 9 opens a quote and question 10's text closes it. By CSV rules
    # the two records are one question with seven cells: 122 questions instead of 123.
    lines = [",Question,A,B,C,D,Answer", *_records(123)]
    lines[9] = lines[9].replace("问题8", '"问题8')  # question 9 (row id 8), line 10
    lines[10] = lines[10].replace("问题9", '问题9"')  # question 10 (row id 9), line 11
    text = "\n".join(lines) + "\n"
    assert len(list(csv.reader(text.splitlines()))) - 1 == 122  # CSV rules: one record less
    path = _write_text(tmp_path, "arts", text.encode())
    with pytest.raises(cmmlu.CMMLUDataError, match=r"arts\.csv, lines 10 and 11: ") as err:
        cmmlu.read_csv(path)
    assert "row id 9" in str(err.value) and str(path) in str(err.value)


def test_a_quote_closed_in_a_later_record_is_found_with_crlf_line_ends(tmp_path) -> None:
    lines = [",Question,A,B,C,D,Answer", *_records(20)]
    lines[3] = lines[3].replace("问题2", '"问题2')
    lines[4] = lines[4].replace("问题3", '问题3"')
    path = _write_text(tmp_path, "arts", ("\r\n".join(lines) + "\r\n").encode())
    with pytest.raises(cmmlu.CMMLUDataError, match=r"lines 4 and 5: .*closes on line 5"):
        cmmlu.read_csv(path)


def test_quoted_fields_and_multiline_text_are_kept(tmp_path) -> None:
    text = (
        ',Question,A,B,C,D,Answer\n0,"第一行\n第二行，有逗号",甲,"乙,""引号""",丙,丁,B\n'
        + "\n".join(_records(3)[1:])
        + "\n"
    )
    path = _write_text(tmp_path, "arts", text.encode())
    rows = cmmlu.read_csv(path)
    assert len(rows) == 3
    assert rows[0]["Question"] == "第一行\n第二行，有逗号" and rows[0]["B"] == '乙,"引号"'


def test_utf8_bom_is_accepted(tmp_path) -> None:
    text = "\n".join([",Question,A,B,C,D,Answer", *_records(7)]) + "\n"
    path = _write_text(tmp_path, "arts", b"\xef\xbb\xbf" + text.encode())
    rows = cmmlu.read_csv(path)
    assert len(rows) == 7 and rows[0]["Question"] == "问题0"


def test_non_utf8_file_is_an_error_naming_it(tmp_path) -> None:
    text = "\n".join([",Question,A,B,C,D,Answer", *_records(3)]) + "\n"
    latin1 = "3,café,a,b,c,d,A\n".encode("latin-1")
    path = _write_text(tmp_path, "arts", text.encode() + latin1)
    with pytest.raises(cmmlu.CMMLUDataError, match=r"line 5: not UTF-8") as err:
        cmmlu._from_dir(tmp_path, "arts")
    assert str(path) in str(err.value)


def test_text_is_kept_as_written(tmp_path) -> None:
    # CMMLU's own code (pandas) keeps spaces around options; so does the loader.
    text = ",Question,A,B,C,D,Answer\n0,问题 ,ARP ,乙,丙,丁,A\n"
    rows = cmmlu.read_csv(_write_text(tmp_path, "arts", text.encode()))
    assert rows[0]["Question"] == "问题 " and rows[0]["A"] == "ARP "


def test_row_count_equals_records_in_every_cmmlu_file(cmmlu_dir: Path) -> None:
    import pandas as pd

    for path in sorted(cmmlu_dir.glob("*/*.csv")):
        assert len(cmmlu.read_csv(path)) == len(pd.read_csv(path, index_col=0)), path


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
