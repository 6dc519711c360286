"""langadapt-train's decontamination also checks TurkishMMLU, and says when it cannot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langadapt_tasks.benchmarks.eval_questions import turkishmmlu_questions
from langadapt_train.decontam import DecontamError, build_index

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "turkishmmlu"


def test_every_turkishmmlu_question_is_an_evaluation_item() -> None:
    items = list(turkishmmlu_questions(FIXTURE))
    assert len(items) == 9 * (5 + 3)
    rows = json.loads((FIXTURE / "test" / "TurkishMMLU_Physics.json").read_text("utf-8"))
    physics = {i.source: i.text for i in items if i.source.startswith("turkishmmlu:physics/")}
    assert physics["turkishmmlu:physics/test#2"] == " ".join(
        [rows[2]["question"], *rows[2]["choices"]]
    )


def test_training_rows_are_checked_against_turkishmmlu(
    cmmlu_dir: Path, mt_bench_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LANGADAPT_TURKISHMMLU_DIR", raising=False)
    index = build_index(13, str(cmmlu_dir), str(mt_bench_dir), str(FIXTURE))
    assert index.sources["turkishmmlu"] == 72 and index.unavailable == {}
    planted = (
        "Soru: Bir cismin kütlesi 2 kg ise ağırlığı yaklaşık kaç N'dur? (g = 10)\n"
        "A. 2\nB. 5\nC. 10\nD. 20\nE. 40\nCevap: D"
    )
    assert index.match(planted)[0] == "turkishmmlu:physics/test#2"
    assert index.match("Bir cismin kütlesi 3 kg ise ağırlığı yaklaşık kaç N'dur?") is None
    # The environment variable works as well as the argument.
    monkeypatch.setenv("LANGADAPT_TURKISHMMLU_DIR", str(FIXTURE))
    assert build_index(13, str(cmmlu_dir), str(mt_bench_dir)).sources["turkishmmlu"] == 72


def test_without_turkishmmlu_the_index_says_so(
    cmmlu_dir: Path, mt_bench_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.delenv("LANGADAPT_TURKISHMMLU_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    index = build_index(13, str(cmmlu_dir), str(mt_bench_dir))
    import pandas as pd

    rows = sum(len(pd.read_csv(path, index_col=0)) for path in cmmlu_dir.glob("*/*.csv"))
    assert rows == 335 + 11_582  # CMMLU's dev and test rows
    assert "turkishmmlu" not in index.sources and index.sources["cmmlu"] == rows
    assert index.unavailable["turkishmmlu"].startswith("not available: no local copy")
    assert "TurkishMMLU not available" in caplog.text


def test_a_broken_local_copy_is_an_error_naming_file_and_index(
    tmp_path: Path, cmmlu_dir: Path, mt_bench_dir: Path
) -> None:
    for split in ("dev", "test"):
        (tmp_path / split).mkdir()
        for path in (FIXTURE / split).glob("*.json"):
            (tmp_path / split / path.name).write_bytes(path.read_bytes())
    bad = tmp_path / "dev" / "TurkishMMLU_Geography.json"
    rows = json.loads(bad.read_text("utf-8"))
    rows[3]["answer"] = "Z"
    bad.write_text(json.dumps(rows, ensure_ascii=False), "utf-8")
    with pytest.raises(DecontamError, match=r"Geography\.json, question index 3: answer 'Z'"):
        build_index(13, str(cmmlu_dir), str(mt_bench_dir), str(tmp_path))
