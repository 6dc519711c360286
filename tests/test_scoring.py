"""The two CMMLU scoring views over an lm-eval results file."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from statistics import fmean

import pytest

from langadapt_tasks.benchmarks.cmmlu_subjects import SUBJECTS
from langadapt_tasks.benchmarks.scoring import (
    format_views,
    leaderboard_view,
    lm_eval_view,
    load_results,
)
from langadapt_tasks.cli import main


def _results(scores: dict[str, float]) -> dict:
    table = {
        f"cmmlu_langadapt_{s}": {"acc,none": v, "acc_stderr,none": 0.01} for s, v in scores.items()
    }
    table["cmmlu_langadapt_stem"] = {"acc,none": 0.25, "acc_stderr,none": 0.02}
    table["cmmlu_langadapt"] = {"acc,none": 0.5, "acc_stderr,none": "N/A"}
    return {"results": table}


def test_leaderboard_counts_china_specific_twice_and_is_unweighted(cmmlu_dir: Path) -> None:
    # Score each subject by its position so every mean is distinct.
    scores = {s: i / 100 for i, s in enumerate(SUBJECTS)}
    view = leaderboard_view(_results(scores))
    humanities = [s for s in SUBJECTS.values() if "humanities" in s.official_categories]
    assert "chinese_history" in {s.name for s in humanities}  # China-specific and humanities
    assert view["humanities"]["score"] == pytest.approx(fmean(scores[s.name] for s in humanities))
    assert view["humanities"]["subjects"] == view["humanities"]["of"] == len(humanities)
    china = [s for s in SUBJECTS.values() if s.partition_category == "china_specific"]
    assert view["china_specific"]["score"] == pytest.approx(fmean(scores[s.name] for s in china))
    assert view["average"]["score"] == pytest.approx(fmean(scores.values()))
    # Overlapping: each category has every subject CMMLU's table lists in it.
    with (cmmlu_dir / "SUBJECTS.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    per_category = Counter(c for r in rows for c in r["official_categories"].split(","))
    assert {k: v["of"] for k, v in view.items() if k != "average"} == per_category
    assert view["average"]["of"] == len(rows)


def test_lm_eval_view_reads_group_rows() -> None:
    view = lm_eval_view(_results({"arts": 1.0}))
    assert view["stem"] == {"score": 0.25, "stderr": 0.02}
    assert view["average"] == {"score": 0.5, "stderr": None}
    assert "humanities" not in view


def test_partial_runs_are_marked() -> None:
    md = format_views(_results({"arts": 1.0, "world_history": 0.0}))["markdown"]
    assert "| Humanities | – | 50.00 (2/" in md


def test_cli_reads_an_output_directory(tmp_path: Path, capsys) -> None:
    nested = tmp_path / "model_dir"
    nested.mkdir()
    (nested / "results_2024-01-01T00-00-00.json").write_text(
        json.dumps(_results({"arts": 1.0})), encoding="utf-8"
    )
    assert main(["cmmlu-scores", str(tmp_path)]) == 0
    assert "| STEM | 25.00 ± 2.00 |" in capsys.readouterr().out


def test_bad_inputs_are_explained(tmp_path: Path, capsys) -> None:
    assert main(["cmmlu-scores", str(tmp_path)]) == 2
    assert "no lm-eval results_*.json" in capsys.readouterr().err
    other = tmp_path / "results_x.json"
    other.write_text(json.dumps({"results": {"hellaswag": {"acc,none": 0.3}}}), encoding="utf-8")
    assert main(["cmmlu-scores", str(other)]) == 2
    assert "was it a run of --tasks cmmlu_langadapt" in capsys.readouterr().err
    assert load_results(other)["_path"] == str(other)
