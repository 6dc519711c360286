"""TurkishMMLU in the study and the report: added per language, skipped when not available,
shown beside CMMLU with deltas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langadapt_tasks.report import build_report
from langadapt_tasks.study.config import load
from langadapt_tasks.study.knowledge import knowledge_tasks
from langadapt_tasks.study.run import run_study

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "turkishmmlu"
OFF = {"HF_HUB_OFFLINE": "1"}


def _results(path: Path, model: str, rows: dict[str, float]) -> Path:
    data = {
        "results": {t: {"acc,none": v, "acc_stderr,none": 0.1} for t, v in rows.items()},
        "config": {"model_args": f"pretrained=org/{model}"},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_each_languages_knowledge_task_is_added_when_its_data_is_there(cmmlu_dir: Path) -> None:
    tasks = ["cmmlu_langadapt", "mtbench_langadapt_zh", "mtbench_langadapt_tr"]
    found = knowledge_tasks(tasks, {"LANGADAPT_TURKISHMMLU_DIR": str(FIXTURE), **OFF})
    assert found.added == ["turkishmmlu_langadapt"] and found.unavailable == {}
    missing = knowledge_tasks(tasks, OFF)
    assert missing.added == [] and list(missing.unavailable) == ["TurkishMMLU"]
    assert "LANGADAPT_TURKISHMMLU_DIR is not set" in missing.unavailable["TurkishMMLU"]
    # A language counts through any of its MT-Bench tasks; a listed subject counts as listed.
    zh = knowledge_tasks(
        ["mtbench_langadapt_zh_mt_writing"], {"LANGADAPT_CMMLU_DIR": str(cmmlu_dir)}
    )
    assert zh.added == ["cmmlu_langadapt"]
    assert knowledge_tasks(["cmmlu_langadapt_arts", "mtbench_langadapt_zh"], OFF).added == []
    assert knowledge_tasks(["mtbench_langadapt_zh"], OFF).unavailable.keys() == {"CMMLU"}


def test_report_shows_both_benchmarks_side_by_side_with_deltas(tmp_path: Path) -> None:
    scores = {
        "base": {"cmmlu_langadapt": 0.30, "turkishmmlu_langadapt": 0.20},
        "tr-r8": {"cmmlu_langadapt": 0.28, "turkishmmlu_langadapt": 0.26},
    }
    subjects = {"base": (0.1, 0.3), "tr-r8": (0.2, 0.5)}  # biology, history
    paths = []
    for model, rows in scores.items():
        bio, hist = subjects[model]
        rows = {
            **rows,
            "turkishmmlu_langadapt_biology": bio,
            "turkishmmlu_langadapt_history": hist,
        }
        paths.append(_results(tmp_path / model / "results_2026-01-01T00-00-00.json", model, rows))
    report = build_report(paths, tmp_path / "r", baseline="base")
    md = report["markdown"]
    assert "## Knowledge: CMMLU and TurkishMMLU" in md
    assert "| model | CMMLU | TurkishMMLU |" in md
    assert "| base | 30.0 ± 10.0 | 20.0 ± 10.0 |" in md
    assert "| tr-r8 | 28.0 ± 10.0 | 26.0 ± 10.0 |" in md
    assert "| tr-r8 | -2.0 ± 14.1 | +6.0 ± 14.1 |" in md  # the delta table
    # TurkishMMLU's own tables; the paper's view is the mean of the subjects present.
    assert "TurkishMMLU (acc, %): the paper's view" in md
    paper = next(
        t
        for t in json.loads((tmp_path / "r" / "report.json").read_text())["tables"]
        if t["key"] == "turkishmmlu_leaderboard"
    )
    assert paper["rows"]["tr-r8"][-1]["value"] == pytest.approx((0.2 + 0.5) / 2)
    assert paper["rows"]["tr-r8"][-1]["note"] == "2/9"
    assert (tmp_path / "r" / "turkishmmlu.png").is_file()


def test_report_of_cmmlu_only_says_turkishmmlu_is_not_available(tmp_path: Path) -> None:
    path = _results(tmp_path / "results_2026-01-01T00-00-00.json", "base", {"cmmlu_langadapt": 0.4})
    md = build_report([path], tmp_path / "plain")["markdown"]
    assert "Knowledge" not in md  # nothing said about TurkishMMLU: the report is as before
    why = {"TurkishMMLU": "no local copy and the Hub is off"}
    md = build_report([path], tmp_path / "r", unavailable=why)["markdown"]
    assert "| base | 40.0 ± 10.0 | not available |" in md
    assert "TurkishMMLU: not available (no local copy and the Hub is off)." in md


def _fake_lm_eval(calls: list[list[str]]):
    """An lm_eval stand-in that writes a results file for the tasks it is asked for."""

    def run(args: list[str], env: dict[str, str]) -> int:
        calls.append(args)
        out = Path(args[args.index("--output_path") + 1])
        tasks = args[args.index("--tasks") + 1].split(",")
        _results(
            out / "org__m" / f"results_2026-01-01T00-00-0{len(calls)}.json",
            "m",
            {t: 0.25 for t in tasks},
        )
        return 0

    return run


@pytest.mark.parametrize("available", [True, False])
def test_study_evaluates_turkishmmlu_or_says_it_is_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, available: bool
) -> None:
    monkeypatch.delenv("LANGADAPT_TURKISHMMLU_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "data"
    data.mkdir()
    if available:
        (data / "turkishmmlu").symlink_to(FIXTURE, target_is_directory=True)
    (tmp_path / "study.yaml").write_text(
        json.dumps(
            {
                "output": "out",
                "base_model": str(tmp_path),
                "data_dir": "data",
                "evaluate": {"tasks": ["cmmlu_langadapt", "mtbench_langadapt_tr"]},
            }
        ),
        encoding="utf-8",
    )
    cfg = load(tmp_path / "study.yaml")
    calls: list[list[str]] = []
    report = run_study(cfg, ["evaluate", "report"], run=_fake_lm_eval(calls))
    tasks = [c[c.index("--tasks") + 1] for c in calls]
    log = capsys.readouterr().out
    md = report["markdown"]
    if available:
        assert tasks == ["cmmlu_langadapt,mtbench_langadapt_tr", "turkishmmlu_langadapt"]
        assert calls[1][calls[1].index("--output_path") + 1] == str(
            tmp_path / "out" / "eval" / "base" / "knowledge"
        )
        assert "| base | 25.0 ± 10.0 | 25.0 ± 10.0 |" in md
    else:
        assert tasks == ["cmmlu_langadapt,mtbench_langadapt_tr"]
        assert "TurkishMMLU not available" in log
        assert "| base | 25.0 ± 10.0 | not available |" in md
    # A second run redoes nothing.
    calls.clear()
    run_study(cfg, ["evaluate", "report"], run=_fake_lm_eval(calls))
    assert calls == []
