"""``langadapt report`` over real lm_eval runs (the tiny Llama, base and a LoRA) and bad inputs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import CLI_ADAPTER, run_cli

from langadapt_tasks.cli import main
from langadapt_tasks.judge.rubrics import SCALES
from langadapt_tasks.report import build_report
from langadapt_tasks.report.inputs import model_name

BASE = "tiny-llama"  # conftest.tiny_llama_dir
LORA = f"{BASE} + {CLI_ADAPTER}"


@pytest.fixture
def runs(cli_runs: dict[str, Path]) -> dict[str, Path]:
    """lm_eval output folders of the base model (CMMLU Humanities) and of the base model with
    a LoRA adapter (the whole CMMLU group), both with MT-Bench zh writing and tr math."""
    return cli_runs


pytestmark = pytest.mark.slow


def logged_accuracy(run: Path, subjects: list[str]) -> float:
    """The mean, over the subjects' logged samples, of "the highest logged log-likelihood
    is the target's": lm-eval's size-weighted group acc, from its samples log."""
    correct = []
    for subject in subjects:
        (path,) = run.rglob(f"samples_cmmlu_langadapt_{subject}_*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            loglikelihoods = [float(resp[0]) for resp in sample["filtered_resps"]]
            best = loglikelihoods.index(max(loglikelihoods))
            correct.append(float(best == int(sample["target"])))
    assert len(correct) == len(subjects)  # --limit 1
    return sum(correct) / len(correct)


def test_report_of_base_and_adapter(runs: dict[str, Path], cmmlu_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = run_cli(["langadapt", "report", str(runs["base"]), str(runs["lora"]), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text(encoding="utf-8")
    # Models named from their model args: base, and base + adapter folder.
    assert f"| {BASE} |" in md and f"| {LORA} |" in md
    assert "lm-eval groups — size-weighted" in md and "leaderboard — unweighted" in md
    # The base model ran Humanities only: its other categories are empty, and its
    # leaderboard Humanities (which also counts China-specific subjects) is marked partial.
    assert "| – |" in md and "(11/" in md
    low, high = SCALES["paper"]  # the rubric's own scale
    assert f"MT-Bench, language zh — judge scale {low:g}–{high:g}" in md
    assert f"MT-Bench, language tr — judge scale {low:g}–{high:g}" in md
    assert f"Δ vs {BASE}" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    # docs/report.md's charts: CMMLU, bars and radar per judged language, fidelity.
    charts = ["cmmlu.png", "fidelity.png"]
    charts += [f"mtbench_{lang}{kind}.png" for lang in ("tr", "zh") for kind in ("", "_radar")]
    assert sorted(p.name for p in out.glob("*.png")) == sorted(charts)
    assert html.count("data:image/png;base64,") == len(charts)
    assert "<img" in html and 'src="' not in html.replace('src="data:', "")  # self-contained
    rows = list(csv.DictReader((out / "report.csv").open(encoding="utf-8")))
    hum = [r for r in rows if r["table"] == "cmmlu_lm_eval" and r["column"] == "Humanities"]
    assert sorted(r["model"] for r in hum) == [BASE, LORA]
    with (cmmlu_dir / "SUBJECTS.tsv").open(encoding="utf-8") as fh:
        rows_tsv = csv.DictReader(fh, delimiter="\t")
        humanities = [r["subject"] for r in rows_tsv if r["partition_category"] == "humanities"]
    for row in hum:
        run = runs["base"] if row["model"] == BASE else runs["lora"]
        assert float(row["value"]) == pytest.approx(logged_accuracy(run, humanities))
    for name in charts:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["baseline"] == BASE and data["models"] == [BASE, LORA]


def test_names_baseline_and_two_runs_of_one_model(runs: dict[str, Path], tmp_path: Path) -> None:
    again = tmp_path / "base-again"
    shutil.copytree(runs["base"], again)
    report = build_report([runs["base"], again], tmp_path / "r1")
    assert report["models"] == [BASE]
    assert any("two runs of the same model" in n for n in report["notes"])
    assert "two runs of the same model" in (tmp_path / "r1" / "report.md").read_text("utf-8")
    # Named apart, they are two rows; the baseline is chosen by name.
    report = build_report(
        [runs["base"], again, runs["lora"]],
        tmp_path / "r2",
        names=["base", "base (rerun)", "zh LoRA"],
        baseline="zh LoRA",
    )
    assert report["models"] == ["base", "base (rerun)", "zh LoRA"]
    assert not report["notes"]
    md = (tmp_path / "r2" / "report.md").read_text(encoding="utf-8")
    assert "Δ vs zh LoRA" in md and "| base (rerun) |" in md
    report = build_report([runs["lora"]], tmp_path / "r3", names=[f"{LORA}=adapted"])
    assert report["models"] == ["adapted"]


def test_bad_inputs_are_explained(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    other = tmp_path / "other" / "results_2026-01-01T00-00-00.json"
    other.parent.mkdir()
    other.write_text(json.dumps({"results": {"arc_easy": {"acc,none": 0.5}}}), encoding="utf-8")
    broken = tmp_path / "results_broken.json"
    broken.write_text("{not json", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [str(runs["base"]), str(other), str(broken), str(empty), str(tmp_path / "missing")]
    assert main(["report", *args, "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "results of other tasks (arc_easy)" in err and "not JSON" in err
    assert "no lm-eval results_*.json" in err and "no such file or directory" in err
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "Inputs not used or ambiguous" in md and "arc_easy" in md
    # Nothing usable: an error that lists why, not a traceback.
    assert main(["report", str(other), str(broken), "--out", str(tmp_path / "r0")]) == 2
    err = capsys.readouterr().err
    assert (
        "no CMMLU, TurkishMMLU, MT-Bench, multiple-choice or held-out results" in err
        and "arc_easy" in err
    )
    assert main(["report", str(runs["base"]), "--baseline", "nope", "--out", str(tmp_path)]) == 2
    assert f"none of the models: {BASE}" in capsys.readouterr().err
    assert main(["report", str(runs["base"]), "--name", "a", "--name", "b"]) == 2


def test_mixed_judge_scales_are_flagged(runs: dict[str, Path], tmp_path: Path) -> None:
    lora = tmp_path / "lora"
    shutil.copytree(runs["lora"], lora)
    verdicts = sorted(lora.rglob("judge_mtbench_langadapt_zh_2*.jsonl"))[-1]
    rows = [json.loads(line) for line in verdicts.read_text(encoding="utf-8").splitlines()]
    for row in rows:  # as if re-judged with `langadapt judge --rubric fastchat`
        row["judge"]["rubric"], row["score"] = "fastchat", 8.0
    newer = verdicts.with_name("judge_mtbench_langadapt_zh_2099-01-01T00-00-00.jsonl")
    newer.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    build_report([runs["base"], lora], tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "different scales" in md and "not comparable" in md
    assert "rubric fastchat)" in md  # the re-judge's rows replace the older ones, per answer


def test_stderr_and_partial_categories_from_a_crafted_file(tmp_path: Path) -> None:
    table = {
        "cmmlu_langadapt_arts": {"acc,none": 0.5, "acc_stderr,none": 0.3},
        "cmmlu_langadapt_chinese_history": {"acc,none": 0.25, "acc_stderr,none": 0.4},
        "cmmlu_langadapt_humanities": {"acc,none": 0.4, "acc_stderr,none": 0.1},
    }
    data = {"results": table, "config": {"model_args": "pretrained=org/Model-7B,peft=out/zh/final"}}
    assert model_name(data) == "Model-7B + zh/final"
    path = tmp_path / "results_2026-01-01T00-00-00.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    report = build_report([path], tmp_path / "r")
    md = report["markdown"]
    assert "| Model-7B + zh/final | – | 40.0 ± 10.0 |" in md
    # Leaderboard: arts and chinese_history are both Humanities subjects: mean 37.5,
    # stderr sqrt(.3² + .4²) / 2 = 25.0.
    assert "37.5 ± 25.0 (2/" in md


def test_multiple_choice_tasks_of_added_languages(tmp_path: Path) -> None:
    paths = []
    for name, acc in (("base", 0.25), ("zh-r8", 0.5)):
        data = {
            "results": {"mc_langadapt_pir": {"acc,none": acc, "acc_stderr,none": 0.1}},
            "config": {"model_args": f"pretrained=org/{name}"},
        }
        paths.append(tmp_path / name / "results_2026-01-01T00-00-00.json")
        paths[-1].parent.mkdir()
        paths[-1].write_text(json.dumps(data), encoding="utf-8")
    md = build_report(paths, tmp_path / "r", baseline="base")["markdown"]
    assert "Multiple choice (acc, %)" in md and "| model | pir |" in md
    assert "| zh-r8 | 50.0 ± 10.0 |" in md and "| zh-r8 | +25.0 ± 14.1 |" in md
    assert (tmp_path / "r" / "multiple_choice.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _mtbench_run(folder: Path, mt_bench_dir: Path, answers: dict[int, str]) -> list:
    """An lm-eval run folder of MT-Bench zh answers (results and samples, one time stamp),
    with the questions of the public zh question file; returns the judge items."""
    from langadapt_tasks.judge.verdicts import item_from_doc

    questions = {}
    for line in (mt_bench_dir / "zh" / "question.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            questions[int(q["question_id"])] = q
    stamp = "2026-01-01T00-00-00.000001"
    folder.mkdir(parents=True)
    by_task: dict[str, list[dict]] = {}
    items = []
    for qid, answer in answers.items():
        q = questions[qid]
        doc = {
            "lang": "zh",
            "turn": 1,
            "question_id": qid,
            "category": q["category"],
            "turns": q["turns"],
            "reference": q.get("reference") or [],
        }
        by_task.setdefault(f"mtbench_langadapt_zh_{q['category']}", []).append(
            {"doc": doc, "resps": [[answer]], "filtered_resps": [answer]}
        )
        items.append(item_from_doc(doc, answer, "org/M"))
    for task, samples in by_task.items():
        path = folder / f"samples_{task}_{stamp}.jsonl"
        path.write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    data = {
        "results": {t: {"lang_fidelity,none": 1.0} for t in by_task},
        "configs": {t: {} for t in by_task},
        "n-samples": {t: {"original": 10, "effective": len(s)} for t, s in by_task.items()},
        "config": {"model_args": "pretrained=org/M", "limit": 2},
        "model_name": "org/M",
    }
    (folder / f"results_{stamp}.json").write_text(json.dumps(data), encoding="utf-8")
    return items


def _verdicts(path: Path, rows: list[tuple[object, float | None, str]]) -> None:
    """A verdict file: (judge item, score, judged_at) per row, in the judge's row format."""
    out = []
    for item, score, when in rows:
        out.append(
            {
                "id": item.id,
                **item.to_dict(),
                "score": score,
                "unscored": score is None,
                "error": None if score is not None else "no score in the reply",
                "judge": {"model": "j", "rubric": "paper"},
                "judged_at": when,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")


def test_verdicts_are_merged_per_answer(mt_bench_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    a, b, c = _mtbench_run(run, mt_bench_dir, {81: "答一", 82: "答二", 83: "答三"})
    _verdicts(
        run / "judge_mtbench_langadapt_zh_2026-01-01T00-00-01.jsonl",
        [(a, 2.0, "2026-01-01T00:00:01"), (b, 2.0, "2026-01-01T00:00:01"), (c, 2.0, "x")],
    )
    # A re-judge of one answer writes a newer file with that one row.
    _verdicts(run / "judge_mtbench_langadapt_zh_2026-01-02T00-00-00.jsonl", [(a, 5.0, "2026-02")])
    md = build_report([run], tmp_path / "r")["markdown"]
    assert "3 of 3 answers scored (judge j, rubric paper)" in md  # was "of 1": newest file only
    assert "| 3.00 ± 1.00 | 0 (of 3) |" in md  # (5 + 2 + 2) / 3
    assert "NOT ALL JUDGED" not in md


def test_unscored_and_unjudged_answers_are_counted_and_said(
    mt_bench_dir: Path, tmp_path: Path
) -> None:
    from langadapt_tasks.judge.verdicts import item_from_doc

    run = tmp_path / "run"
    a, b, c = _mtbench_run(run, mt_bench_dir, {81: "答一", 82: "答二", 83: "答三"})
    # b: the judge gave no score; c: only a verdict of an earlier answer to the question.
    earlier = item_from_doc({**c.to_dict(), "turns": list(c.questions)}, "旧答", "org/M")
    _verdicts(
        run / "judge_mtbench_langadapt_zh_2026-01-01T00-00-01.jsonl",
        [(a, 4.0, "t1"), (b, None, "t1"), (earlier, 5.0, "t1")],
    )
    report = build_report([run], tmp_path / "r")
    md = report["markdown"]
    assert "| 4.00 | 2 (of 3) |" in md
    assert "1 of 3 answers scored" in md
    assert "NOT ALL JUDGED: 1 unscored by the judge, 1 not judged yet" in md
    assert f"langadapt judge {run}" in md


def test_limit_and_shots_are_the_recorded_ones(tmp_path: Path) -> None:
    def run(name: str, limit: float | None) -> Path:
        data = {
            "results": {"cmmlu_langadapt_arts": {"acc,none": 0.5, "acc_stderr,none": 0.1}},
            "n-samples": {"cmmlu_langadapt_arts": {"original": 5, "effective": 5}},
            "n-shot": {"cmmlu_langadapt_arts": 5},
            "config": {"model_args": f"pretrained=org/{name}", "limit": limit},
        }
        path = tmp_path / name / "results_2026-01-01T00-00-00.json"
        path.parent.mkdir()
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    # A full run of a subject with 5 questions is not a --limit run (was: "fewer than 100").
    md = build_report([run("full", None), run("part", 0.5)], tmp_path / "r")["markdown"]
    note = next(line for line in md.splitlines() if "Run with lm_eval --limit" in line)
    assert note.endswith("below 1): part (0.5); scores for a smoke test, not for comparison.")
    assert "Few-shot examples per question (n-shot): full: 5; part: 5." in md
