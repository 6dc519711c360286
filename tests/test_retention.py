"""English retention: MMLU (lm-eval's own ``mmlu``, read from a local copy of its CSV release)
and English MT-Bench (FastChat's questions, judged with FastChat's own prompts), on their own
and in the study.

The references: lm-eval's installed ``mmlu`` YAMLs (``lm_eval/tasks/mmlu/default``), built here
into lm-eval's own task over the same questions, and FastChat's ``judge_prompts.jsonl``, filled
in here as FastChat's ``run_judge_single`` does.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import datasets
import lm_eval
import pytest
import yaml
from conftest import task_manager, write_mmlu
from in_process import run_here
from judge_server import JudgeServer, Reply

from langadapt_tasks.benchmarks import mmlu as mmlu_data
from langadapt_tasks.benchmarks.mmlu_subjects import SUBJECTS
from langadapt_tasks.report import build_report
from langadapt_tasks.study.commands import judge_commands
from langadapt_tasks.study.config import StudyConfigError, load
from langadapt_tasks.study.retention import retention_tasks
from langadapt_tasks.study.run import run_study

STOCK = Path(lm_eval.__file__).resolve().parent / "tasks" / "mmlu" / "default"
OFF = {"HF_HUB_OFFLINE": "1"}


# --- MMLU -----------------------------------------------------------------------------------


def hub_rows(root: Path, subject: str) -> datasets.DatasetDict:
    """The CSV release's rows in the Hub's schema (cais/mmlu: question, subject, choices,
    answer as the letter's index), read here with the csv module."""
    parts = {}
    for split in ("test", "dev"):
        with (root / split / f"{subject}_{split}.csv").open(encoding="utf-8", newline="") as fh:
            rows = [
                {
                    "question": r[0],
                    "subject": subject,
                    "choices": r[1:5],
                    "answer": "ABCD".index(r[5]),
                }
                for r in csv.reader(fh)
            ]
        parts[split] = datasets.Dataset.from_list(rows)
    return datasets.DatasetDict(parts)


def stock_task(root: Path, subject: str):
    """lm-eval's own ``mmlu_<subject>``: its template and subject YAML merged as its
    ``include`` does, 5-shot, over the same questions."""
    from lm_eval.api.task import ConfigurableTask

    config = yaml.safe_load((STOCK / "_default_template_yaml").read_text(encoding="utf-8"))
    own = yaml.safe_load((STOCK / f"mmlu_{subject}.yaml").read_text(encoding="utf-8"))
    assert own.pop("include") == "_default_template_yaml"
    own.pop("tag")
    config.update(own, num_fewshot=5, custom_dataset=lambda **_: hub_rows(root, subject))
    return ConfigurableTask(config=config)


def requests(task) -> list[tuple]:
    task.build_all_requests(rank=0, world_size=1)
    return [(i.doc_id, i.arguments) for i in task.instances]


def test_mmlu_subjects_and_categories_are_lm_evals(mmlu_dir: Path) -> None:
    stock = {p.stem.removeprefix("mmlu_"): p for p in STOCK.glob("mmlu_*.yaml")}
    assert sorted(stock) == sorted(SUBJECTS)
    for subject, category in SUBJECTS.items():
        own = yaml.safe_load(stock[subject].read_text(encoding="utf-8"))
        assert own["tag"] == f"mmlu_{category}_tasks"


@pytest.mark.parametrize("subject", ["abstract_algebra", "high_school_us_history", "virology"])
def test_mmlu_prompts_are_lm_evals_stock_mmlu_on_a_local_copy(mmlu_dir: Path, subject: str) -> None:
    """Every request (the 5-shot context with lm-eval's description, and each choice) equals
    the one lm-eval's own mmlu task builds over the same questions."""
    from lm_eval.tasks import get_task_dict

    ours = get_task_dict([f"mmlu_langadapt_{subject}"], task_manager(mmlu_dir=str(mmlu_dir)))[
        f"mmlu_langadapt_{subject}"
    ]
    got, expected = requests(ours), requests(stock_task(mmlu_dir, subject))
    assert got == expected and len(got) == 2 * 4
    context = got[0][1][0]
    assert context.startswith("The following are multiple choice questions (with answers) about")
    assert context.count("\nAnswer:") == 6 and context.endswith("\nAnswer:")


def test_mmlu_reads_the_environment_and_says_what_is_missing(mmlu_dir: Path, tmp_path) -> None:
    assert mmlu_data.availability({"LANGADAPT_MMLU_DIR": str(mmlu_dir)}) is None
    why = mmlu_data.availability(OFF)
    assert "no local copy (LANGADAPT_MMLU_DIR is not set)" in why and "HF_HUB_OFFLINE" in why
    missing = mmlu_data.availability({"LANGADAPT_MMLU_DIR": str(tmp_path / "nope")})
    assert "no such directory" in missing
    # A folder without a subject's file, a row short of a cell, a bad answer: file and line.
    partial = write_mmlu(tmp_path / "partial", ["anatomy"])
    with pytest.raises(mmlu_data.MMLUDataError, match=r"virology_test\.csv not found.*CSV release"):
        mmlu_data.MMLU.from_dir(partial, "virology")
    bad = partial / "test" / "anatomy_test.csv"
    bad.write_text("q,a,b,c,d,A\nq2,a,b,c,d\n", encoding="utf-8")
    with pytest.raises(mmlu_data.MMLUDataError, match=rf"{bad}, line 2: 5 cells, expected 6"):
        mmlu_data.read_csv(bad)
    bad.write_text("q,a,b,c,d,E\n", encoding="utf-8")
    with pytest.raises(mmlu_data.MMLUDataError, match=r"line 1: answer 'E' is not one of"):
        mmlu_data.read_csv(bad)


def test_mmlu_without_data_fails_naming_both_local_options(monkeypatch) -> None:
    monkeypatch.delenv("LANGADAPT_MMLU_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(mmlu_data.MMLUDataError, match=r"LANGADAPT_MMLU_DIR=DIR.*mmlu_dir"):
        mmlu_data.MMLU.load(None, "anatomy")


@pytest.mark.slow
def test_mmlu_through_langadapt_hf_matches_stock_requests_and_reports(
    tiny_llama_dir: Path, mmlu_dir: Path, tmp_path: Path
) -> None:
    """The whole group through lm_eval's CLI and langadapt-hf: lm-eval's four categories and
    its average, each subject's requests lm-eval's own, and the report's English MMLU."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGADAPT_MMLU")}
    env.update(LANGADAPT_MMLU_DIR=str(mmlu_dir), **OFF)
    out = tmp_path / "out"
    args = ["lm_eval", "--model", "langadapt-hf", "--model_args", f"pretrained={tiny_llama_dir}"]
    args += ["--tasks", "mmlu_langadapt", "--limit", "1", "--batch_size", "8"]
    args += ["--output_path", str(out), "--log_samples"]
    proc = run_here(args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    data = json.loads(results.read_text(encoding="utf-8"))
    groups = ("mmlu_langadapt", *(f"mmlu_langadapt_{c}" for c in ("stem", "other")))
    groups += ("mmlu_langadapt_social_sciences", "mmlu_langadapt_humanities")
    assert all(0 <= data["results"][g]["acc,none"] <= 1 for g in groups)
    for subject in ("abstract_algebra", "world_religions"):
        (path,) = results.parent.glob(f"samples_mmlu_langadapt_{subject}_*.jsonl")
        sample = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
        expected = [args for doc_id, args in requests(stock_task(mmlu_dir, subject)) if doc_id == 0]
        got = [(a["arg_0"], a["arg_1"]) for a in sample["arguments"].values()]
        assert got == [tuple(e) for e in expected]
    md = build_report([results], tmp_path / "report")["markdown"]
    assert "English MMLU (acc, %)" in md and "| STEM | Other | Social Sciences | Humanities |" in md


# --- English MT-Bench -------------------------------------------------------------------------


def fastchat_prompts(mt_bench_dir: Path) -> dict[str, dict]:
    path = mt_bench_dir / "en" / "judge_prompts.jsonl"
    return {r["name"]: r for r in map(json.loads, path.read_text("utf-8").splitlines())}


def first_question(mt_bench_dir: Path, category: str) -> dict:
    rows = map(json.loads, (mt_bench_dir / "en" / "question.jsonl").read_text("utf-8").splitlines())
    return next(r for r in rows if r["category"] == category)


def reference(mt_bench_dir: Path, qid: int) -> list[str]:
    path = mt_bench_dir / "en" / "reference_answer" / "gpt-4.jsonl"
    rows = map(json.loads, path.read_text("utf-8").splitlines())
    return next(r["choices"][0]["turns"] for r in rows if r["question_id"] == qid)


@pytest.fixture
def server() -> Iterator[JudgeServer]:
    srv = JudgeServer().start()
    srv.responder = lambda body, n: Reply("Rating: [[7]]")
    yield srv
    srv.stop()


@pytest.mark.slow
def test_english_mt_bench_is_judged_with_fastchats_own_prompts_byte_for_byte(
    tiny_llama_dir: Path, mt_bench_dir: Path, server: JudgeServer, tmp_path: Path
) -> None:
    """``mtbench_langadapt_en`` answered (no system prompt of ours), then ``langadapt judge
    --languages en --rubric fastchat`` as the study calls it: each request is FastChat's
    single-v1 (single-math-v1 with the GPT-4 reference for math), built here from FastChat's
    judge_prompts.jsonl, temperature 0, max_tokens 2048; scores on FastChat's 1–10 scale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_JUDGE"))}
    env.update(
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),
        LANGADAPT_JUDGE_CACHE=str(tmp_path / "cache.sqlite"),
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="sk-loopback-retention-1234",
        LANGADAPT_JUDGE_RUBRIC="paper",  # the study's languages' rubric: English ignores it
        **OFF,
    )
    out = tmp_path / "out"
    args = ["lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_llama_dir}"]
    args += ["--tasks", "mtbench_langadapt_en_writing,mtbench_langadapt_en_math"]
    args += ["--limit", "1", "--gen_kwargs", "max_gen_toks=8", "--apply_chat_template"]
    args += ["--output_path", str(out), "--log_samples", "--metadata", '{"judge": "off"}']
    proc = run_here(args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.requests == []
    answers = {}
    for category in ("writing", "math"):
        (path,) = out.rglob(f"samples_mtbench_langadapt_en_{category}_*.jsonl")
        sample = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
        answers[category] = sample["resps"][0][0]
        assert "用中文" not in json.dumps(sample["arguments"], ensure_ascii=False)
    wrong = run_here(["langadapt", "judge", str(out), "--languages", "zh"], env=env)
    assert (
        wrong.returncode != 0
        and "no MT-Bench answers in zh under the paths given (found: en)" in wrong.stderr
    )
    judge = ["langadapt", "judge", str(out), "--languages", "en", "--rubric", "fastchat"]
    proc = run_here(judge, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    prompts = fastchat_prompts(mt_bench_dir)
    writing, math = first_question(mt_bench_dir, "writing"), first_question(mt_bench_dir, "math")
    w = prompts["single-v1"]
    m = prompts["single-math-v1"]
    expected = [
        [
            {"role": "system", "content": w["system_prompt"]},
            {
                "role": "user",
                "content": w["prompt_template"].format(
                    question=writing["turns"][0], answer=answers["writing"]
                ),
            },
        ],
        [
            {"role": "system", "content": m["system_prompt"]},
            {
                "role": "user",
                "content": m["prompt_template"].format(
                    question=math["turns"][0],
                    answer=answers["math"],
                    ref_answer_1=reference(mt_bench_dir, math["question_id"])[0],
                ),
            },
        ],
    ]
    got = sorted(
        (b["messages"] for b in server.requests), key=lambda m: "Reference Answer" in str(m)
    )
    assert json.dumps(got, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
    assert all(b["temperature"] == 0 and b["max_tokens"] == 2048 for b in server.requests)
    assert "| **mtbench_langadapt_en** | 7.00 |" in proc.stdout


# --- the study ------------------------------------------------------------------------------


def _study(tmp_path: Path, evaluate: dict, data: dict[str, Path]) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in data.items():
        (folder / name).symlink_to(target, target_is_directory=True)
    adapter = tmp_path / "zh-r8"
    adapter.mkdir(exist_ok=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    config = {
        "output": "out",
        "base_model": str(tmp_path),
        "data_dir": "data",
        "train": {"adapters": {"zh-r8": "zh-r8"}},
        "evaluate": {"tasks": ["cmmlu_langadapt_arts", "mtbench_langadapt_zh"], **evaluate},
    }
    (tmp_path / "study.yaml").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path / "study.yaml"


def _fake_lm_eval(calls: list[list[str]]):
    """An lm_eval stand-in writing a results file for the tasks asked: the adapter 10 points
    lower on everything, its English answers half as English."""

    def run(args: list[str], env: dict[str, str]) -> int:
        calls.append(args)
        out = Path(args[args.index("--output_path") + 1])
        adapter = "peft=" in args[args.index("--model_args") + 1]
        value = 0.5 - 0.1 * adapter
        results = {}
        for task in args[args.index("--tasks") + 1].split(","):
            tasks = [task] + (
                [f"{task}_{c}" for c in ("writing", "math")] if task.startswith("mtbench") else []
            )
            for t in tasks:
                results[t] = {
                    "acc,none": value,
                    "acc_stderr,none": 0.01,
                    "lang_fidelity,none": 1.0 - 0.5 * adapter,
                }
        data = {"results": results, "config": {"model_args": args[args.index("--model_args") + 1]}}
        path = out / "m" / f"results_2026-01-01T00-00-0{len(calls) % 10}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data), encoding="utf-8")
        return 0

    return run


def test_retention_names_are_checked(tmp_path: Path) -> None:
    for bad, message in ((["cmmlu"], "not an English retention task"), (["mmlu", "mmlu"], "twice")):
        config = _study(tmp_path / str(len(bad)), {"retention": bad}, {})
        with pytest.raises(StudyConfigError, match=message):
            load(config)


@pytest.mark.parametrize("available", [True, False])
def test_study_adds_english_retention_for_every_model_or_says_why_not(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mmlu_dir: Path,
    mt_bench_dir: Path,
    capsys,
    available: bool,
) -> None:
    for var in ("LANGADAPT_MMLU_DIR", "LANGADAPT_MTBENCH_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = {"mmlu": mmlu_dir, "mt_bench": mt_bench_dir} if available else {}
    cfg = load(_study(tmp_path, {"turn2": True, "num_fewshot": 5}, data))
    calls: list[list[str]] = []
    report = run_study(cfg, ["evaluate", "report"], run=_fake_lm_eval(calls))
    runs = {c[c.index("--output_path") + 1]: c for c in calls}
    out = tmp_path / "out" / "eval"
    for model in ("base", "zh-r8"):
        retention = [runs.get(str(out / model / f)) for f in ("retention", "retention_mtbench")]
        turn2 = runs.get(str(out / model / "retention_turn2"))
        if not available:
            assert retention == [None, None] and turn2 is None
            continue
        mc, mt = retention
        assert mc[mc.index("--tasks") + 1] == "mmlu_langadapt"
        assert mc[mc.index("--num_fewshot") + 1] == "5"
        assert mt[mt.index("--tasks") + 1] == "mtbench_langadapt_en"
        assert "--num_fewshot" not in mt and "--apply_chat_template" in mt
        assert turn2[turn2.index("--tasks") + 1] == "mtbench_langadapt_en_mt"
        metadata = json.loads(turn2[turn2.index("--metadata") + 1])
        assert metadata["mtbench_turn1"] == str(out / model / "retention_mtbench")
    md = report["markdown"]
    log = capsys.readouterr().out
    ledger = md[md.index("### Bought and cost (zh)") :].split("\n\n")[1]
    if available:
        assert "evaluate: adding mmlu_langadapt (English retention, every model)" in log
        assert "Δ English MMLU %" in ledger and "Δ English fidelity %" in ledger
        assert "| zh-r8 |" in ledger and "-10.0 ± 1.4" in ledger and "-50.0" in ledger
        assert "English MMLU (acc, %)" in md and "Bought and cost (en)" not in md
    else:
        assert "English MMLU not available" in log and "English MT-Bench not available" in log
        assert "English retention not measured" in md
        assert "| base | not available |" in md
    calls.clear()
    run_study(cfg, ["evaluate", "report"], run=_fake_lm_eval(calls))
    assert calls == []  # nothing redone


def test_retention_off_and_the_judge_calls_per_rubric(tmp_path: Path, mt_bench_dir: Path) -> None:
    env = {"LANGADAPT_MTBENCH_DIR": str(mt_bench_dir), **OFF}
    cfg = load(_study(tmp_path, {"retention": []}, {}))
    assert retention_tasks(cfg, env).tasks == []
    cfg = load(_study(tmp_path / "on", {"retention": ["mtbench_langadapt_en_writing"]}, {}))
    found = retention_tasks(cfg, env)
    assert found.tasks == ["mtbench_langadapt_en_writing"] and found.unavailable == {}
    from langadapt_tasks.study.config import ModelSpec

    commands = judge_commands(cfg, ModelSpec("base", "m"), found.tasks)
    assert [(c.languages, c.rubric) for c in commands] == [(("zh",), None), (("en",), "fastchat")]
    assert commands[0].args[-2:] == ["--languages", "zh"]
    assert commands[1].args[-4:] == ["--languages", "en", "--rubric", "fastchat"]


def test_grid_report_puts_english_retention_in_every_languages_ledger(tmp_path: Path) -> None:
    """In the grid layout, English is no language of the grid: its group holds every model
    of the base model (adapters included), and each language's ledger has the cost columns."""
    from langadapt_tasks.report import Identity

    def results(name: str, acc: float, fidelity: float) -> Path:
        rows = {
            "cmmlu_langadapt": {"acc,none": acc, "acc_stderr,none": 0.01},
            "mmlu_langadapt": {"acc,none": acc, "acc_stderr,none": 0.02},
            "mtbench_langadapt_en_writing": {"lang_fidelity,none": fidelity},
        }
        path = tmp_path / name / "results_2026-01-01T00-00-00.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"results": rows}), encoding="utf-8")
        return path

    paths = [results("base", 0.5, 1.0), results("adapter", 0.4, 0.25)]
    identities = {
        "smol/base": Identity("smol/base", "smol", "org/m", "base"),
        "smol/zh/r8": Identity("smol/zh/r8", "smol", "org/m", "r8", "zh"),
    }
    report = build_report(
        paths,
        tmp_path / "report",
        names=["smol/base", "smol/zh/r8"],
        baseline="smol/base",
        identities=identities,
    )
    md = report["markdown"]
    ledger = md[md.index("### Bought and cost (zh)") :].split("\n\n")[1]
    assert "Δ English MMLU %" in ledger and "Δ English fidelity %" in ledger
    assert "| smol/zh/r8 |" in ledger and "-10.0 ± 2.8" in ledger and "-75.0" in ledger
    assert "## smol, en" in md and "Bought and cost (en)" not in md
    english = md[md.index("## smol, en") :].split("\n## ", 1)[0]
    assert "English MMLU (acc, %)" in english and "| smol/zh/r8 |" in english  # every model


def test_the_plan_lists_retention_runs_and_one_judge_call_per_rubric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mmlu_dir: Path, mt_bench_dir: Path
) -> None:
    from langadapt_tasks.study.plan import format_plan
    from langadapt_tasks.study.run import plan_study

    for var in ("LANGADAPT_MMLU_DIR", "LANGADAPT_MTBENCH_DIR", "LANGADAPT_JUDGE_RUBRIC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = _study(tmp_path, {"limit": 1}, {"mmlu": mmlu_dir, "mt_bench": mt_bench_dir})
    data = json.loads(config.read_text(encoding="utf-8"))
    config.write_text(json.dumps({**data, "judge": {"model": "judge-1"}}), encoding="utf-8")
    cfg = load(config)
    plan = plan_study(cfg)
    evals = {s.name: s.command for s in plan.of("evaluate")}
    assert "mmlu_langadapt" in evals["zh-r8 (retention)"]
    assert "mtbench_langadapt_en" in evals["base (retention_mtbench)"]
    judges = [s.name for s in plan.of("judge")]
    assert judges == ["base", "base (fastchat)", "zh-r8", "zh-r8 (fastchat)"]
    # Two models: 8 Chinese answers (one per category) judged with the paper rubric, 8 English
    # ones with FastChat's prompts.
    assert plan.judge_requests == {"paper": 16, "fastchat": 16}
    text = format_plan(cfg, plan)
    assert "judge requests, rubric fastchat: 16" in text and not (tmp_path / "out").exists()
    monkeypatch.setattr(cfg, "data_dir", None)  # no local copies: said in the plan
    text = format_plan(cfg, plan_study(cfg))
    assert "English MMLU: not available (no local copy (LANGADAPT_MMLU_DIR is not set)" in text
    assert "English MT-Bench: not available (no local copy" in text
