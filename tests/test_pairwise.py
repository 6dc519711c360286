"""Pairwise judging (rubric ``fastchat-pair``) against FastChat's ``run_judge_pair`` and
``play_a_match_pair`` (lm-sys/FastChat, ``fastchat/llm_judge/common.py``), transcribed here,
with the prompts read straight from the reference prompt files."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from in_process import run_here
from judge_server import JudgeServer, Reply, prompt_of
from test_judge_prompts import turkish_prompts

from langadapt_tasks.judge.engine import judge_items
from langadapt_tasks.judge.pairwise import bootstrap_interval, combine, pair_up, win_rate
from langadapt_tasks.judge.rubrics import JudgeItem, build_messages
from langadapt_tasks.judge.settings import resolve

NEED_REF_CATS = ["math", "reasoning", "coding"]  # FastChat's NEED_REF_CATS
PROMPT_FILES = {"zh": "zh/judge_prompts_zh.jsonl", "en": "en/judge_prompts.jsonl"}


def load_prompts(mt_bench_dir: Path, lang: str) -> dict[str, dict]:
    if lang == "tr":  # the derivation the Turkish file states (test_judge_prompts)
        return turkish_prompts(mt_bench_dir)
    path = mt_bench_dir / PROMPT_FILES[lang]
    return {r["name"]: r for r in map(json.loads, path.read_text("utf-8").splitlines())}


def fastchat_pair_messages(
    prompts: dict[str, dict], question: dict, answer_a: list[str], answer_b: list[str], refs, turn
) -> list[dict[str, str]]:
    """FastChat's ``run_judge_pair`` up to the request (the judge chosen as gen_judgment.py
    chooses it: pair-math-v1 for NEED_REF_CATS)."""
    ref = question["category"] in NEED_REF_CATS
    name = ("pair-math-v1" if ref else "pair-v2") + ("-multi-turn" if turn == 2 else "")
    judge = prompts[name]
    kwargs = {}
    if turn == 2:
        if ref:
            kwargs["ref_answer_1"] = refs[0]
            kwargs["ref_answer_2"] = refs[1]
        user_prompt = judge["prompt_template"].format(
            question_1=question["turns"][0],
            question_2=question["turns"][1],
            answer_a_1=answer_a[0],
            answer_b_1=answer_b[0],
            answer_a_2=answer_a[1],
            answer_b_2=answer_b[1],
            **kwargs,
        )
    else:
        if ref:
            kwargs["ref_answer_1"] = refs[0]
        user_prompt = judge["prompt_template"].format(
            question=question["turns"][0], answer_a=answer_a[0], answer_b=answer_b[0], **kwargs
        )
    return [
        {"role": "system", "content": judge["system_prompt"]},
        {"role": "user", "content": user_prompt},
    ]


def fastchat_outcome(g1_winner: str, g2_winner: str) -> str:
    """FastChat's ``play_a_match_pair`` (game 1: model_1 as A; game 2: swapped) and how its
    pairwise results count a game: inconsistent orders are a tie."""
    g1_map = {"A": "model_1", "B": "model_2"}
    g2_map = {"A": "model_2", "B": "model_1"}
    g1_winner = g1_map.get(g1_winner, g1_winner)
    g2_winner = g2_map.get(g2_winner, g2_winner)
    if g1_winner == "tie" or g1_winner != g2_winner:
        return "tie"
    return "win" if g1_winner == "model_1" else "loss"


def question(mt_bench_dir: Path, category: str) -> dict:
    rows = map(json.loads, (mt_bench_dir / "en" / "question.jsonl").read_text("utf-8").splitlines())
    q = next(r for r in rows if r["category"] == category)
    path = mt_bench_dir / "en" / "reference_answer" / "gpt-4.jsonl"
    refs = {r["question_id"]: r["choices"][0]["turns"] for r in map(json.loads, path.open())}
    return {**q, "reference": refs.get(q["question_id"], [])}


@pytest.fixture
def server() -> Iterator[JudgeServer]:
    srv = JudgeServer().start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("lang", ["zh", "en", "tr"])
def test_pairwise_requests_are_fastchats_in_both_orders_byte_for_byte(
    lang: str, mt_bench_dir: Path, server: JudgeServer, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LANGADAPT_MTBENCH_DIR", str(mt_bench_dir))
    server.responder = lambda body, n: Reply("[[A]]")
    prompts = load_prompts(mt_bench_dir, lang)
    mine = ["模型的回答 {answer_a}", "第二轮 {{x}}"]
    base = ["the baseline's answer", "its second answer"]
    settings = resolve(
        {"judge_rubric": "fastchat-pair", "judge_concurrency": 1},
        env={
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-pair-0000",
            "LANGADAPT_JUDGE_CACHE": str(tmp_path / "cache.sqlite"),
        },
    )
    for category, turn in itertools.product(("writing", "math"), (1, 2)):
        q = question(mt_bench_dir, category)  # the question text is input; the prompt is compared

        mine_item, base_item = (
            JudgeItem(
                lang, turn, q["question_id"], category, tuple(q["turns"]),
                tuple(answers[:turn]), tuple(q["reference"]), model,
            )
            for model, answers in (("adapter", mine), ("base", base))
        )  # fmt: skip
        ((ab, ba),) = pair_up([mine_item], [base_item]).pairs
        before = len(server.requests)
        judge_items([ab, ba], settings, progress=False)
        first, second = (b for b in server.requests[before:])
        refs = q["reference"]
        expected_ab = fastchat_pair_messages(prompts, q, mine, base, refs, turn)
        expected_ba = fastchat_pair_messages(prompts, q, base, mine, refs, turn)
        got = sorted([first["messages"], second["messages"]], key=json.dumps)
        assert got == sorted([expected_ab, expected_ba], key=json.dumps), (category, turn)
        assert build_messages("fastchat-pair", ab) == expected_ab
        assert all(b["temperature"] == 0 and b["max_tokens"] == 2048 for b in (first, second))
    if lang == "tr":
        assert "(i.e., English or Turkish)" in expected_ab[0]["content"]


def test_both_orders_combine_as_fastchat_combines_them() -> None:
    verdicts = ["A", "B", "tie"]
    for g1, g2 in itertools.product(verdicts, verdicts):
        assert combine(g1, g2) == fastchat_outcome(g1, g2), (g1, g2)
    # An order without a verdict (FastChat's "error") leaves the pair unscored, never a tie.
    for other in [*verdicts, None]:
        assert combine(None, other) is None and combine(other, None) is None


def test_win_rate_and_its_bootstrap_interval() -> None:
    outcomes = ["win"] * 6 + ["tie"] * 2 + ["loss"] * 2
    assert win_rate(outcomes) == pytest.approx(0.7)
    low, high = bootstrap_interval(outcomes)
    assert 0.3 < low < 0.7 < high <= 1.0
    assert bootstrap_interval(outcomes) == (low, high)  # seeded: the same every time
    assert bootstrap_interval(["tie"] * 5) == (0.5, 0.5)


def test_unmatched_questions_are_reported_not_skipped() -> None:
    def item(model: str, qid: int, turn: int = 1) -> JudgeItem:
        return JudgeItem("zh", turn, qid, "writing", ("q", "q2"), ("a", "b")[:turn], (), model)

    pairing = pair_up([item("m", 81), item("m", 82)], [item("base", 81), item("base", 83)])
    assert [p[0].question_id for p in pairing.pairs] == [81]
    assert pairing.missing == [
        "zh turn 1 question 82: no baseline answer",
        "zh turn 1 question 83: no answer of the model",
    ]
    # Matched by question and turn, never by position.
    pairing = pair_up([item("m", 82), item("m", 81)], [item("base", 81), item("base", 82)])
    assert [(a.question_id, a.rival_model) for a, _ in pairing.pairs] == [
        (81, "base"),
        (82, "base"),
    ]


def test_a_pairwise_rubric_without_a_baseline_is_refused(cli_runs: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_J"))}
    env.update(OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="sk-x")
    lora, base = str(cli_runs["lora"]), str(cli_runs["base"])
    proc = run_here(["langadapt", "judge", lora, "--rubric", "fastchat-pair"], env=env)
    assert proc.returncode == 2 and "give the baseline's samples with --against" in proc.stderr
    proc = run_here(["langadapt", "judge", lora, "--against", base], env=env)
    assert proc.returncode == 2 and "choose a pairwise rubric" in proc.stderr


@pytest.mark.slow
def test_langadapt_judge_against_a_baseline(
    cli_runs: dict[str, Path], mt_bench_dir: Path, server: JudgeServer, tmp_path: Path
) -> None:
    """The adapter's answers (zh writing, tr math) against the base model's, at the loopback
    judge: zh always says "[[A]]" (the orders disagree: a tie), tr prefers the adapter's
    answer wherever it is shown (a win). Both raw verdicts are kept; a rerun asks nothing."""
    runs = {name: tmp_path / name for name in cli_runs}
    for name, folder in cli_runs.items():
        shutil.copytree(folder, runs[name])
    (samples,) = runs["lora"].rglob("samples_mtbench_langadapt_tr_math_*.jsonl")
    adapter_tr = json.loads(samples.read_text(encoding="utf-8").splitlines()[0])["resps"][0][0]

    def reply(body: dict, n: int) -> Reply:
        prompt = prompt_of(body)
        if "English or Turkish" not in body["messages"][0]["content"]:
            return Reply("Both are fine. [[A]]")
        a = prompt.split("[The Start of Assistant A's Answer]\n", 1)[1]
        return Reply("[[A]]" if a.startswith(adapter_tr) else "[[B]]")

    server.responder = reply
    env = {
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-pair-1111",
        "LANGADAPT_MTBENCH_DIR": str(mt_bench_dir),
        "LANGADAPT_JUDGE_CACHE": str(tmp_path / "cache.sqlite"),
        "HF_HUB_OFFLINE": "1",
    }
    args = ["langadapt", "judge", str(runs["lora"]), "--rubric", "fastchat-pair"]
    args += ["--against", str(runs["base"])]
    proc = run_here(args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(server.requests) == 4  # two pairs, both orders
    out = proc.stdout
    assert "| **mtbench_langadapt_tr** | 1 | 0 | 0 | 0 | 100.0 | 100.0–100.0 | 100.0 |" in out
    assert "| **mtbench_langadapt_zh** | 0 | 1 | 0 | 0 | 50.0 | 50.0–50.0 | 0.0 |" in out
    assert "seed 0" in out and "sk-pair-1111" not in out
    (zh_file,) = runs["lora"].rglob("pair_mtbench_langadapt_zh_*.jsonl")
    (row,) = [json.loads(line) for line in zh_file.read_text(encoding="utf-8").splitlines()]
    assert row["orders"]["AB"]["winner"] == "A" and row["orders"]["BA"]["winner"] == "A"
    assert row["result"] == "tie" and row["orders"]["AB"]["replies"] == ["Both are fine. [[A]]"]
    assert row["against_answers"] and row["against"] != row["model"]
    assert not list(runs["base"].rglob("pair_*.jsonl"))  # the baseline is not judged
    again = run_here(args, env=env)
    assert again.returncode == 0 and len(server.requests) == 4  # all cached


@pytest.mark.slow
@pytest.mark.e2e  # a whole study (two models, both judges): make test-e2e
def test_a_study_judges_one_by_one_and_against_the_baseline(
    tiny_llama_dir: Path, lora_adapter: Path, mt_bench_dir: Path, cmmlu_dir: Path, tmp_path
) -> None:
    """``judge.rubrics: [paper, fastchat-pair]``: each answer scored (paper) and the adapter's
    answers compared with the base model's in both orders; both verdict sets beside the
    adapter's samples, the report's win-rate table; a rerun asks the judge nothing."""
    from test_study import study_env, write

    server = JudgeServer().start()
    server.responder = lambda body, n: Reply("[[A]]" if "[[A]]" in str(body) else "3")
    config = write(
        tmp_path / "study.yaml",
        {
            "output": "study",
            "base_model": str(tiny_llama_dir),
            "train": {"adapters": {"zh-r4": str(lora_adapter)}},
            "evaluate": {
                "tasks": ["mtbench_langadapt_zh_writing"],
                "limit": 1,
                "gen_kwargs": "max_gen_toks=8",
                "apply_chat_template": False,
                "retention": [],
            },
            "judge": {"rubrics": ["paper", "fastchat-pair"], "model": "loopback-judge"},
        },
    )
    env = study_env(
        tmp_path,
        cmmlu_dir,
        OPENAI_API_KEY="sk-test",
        LANGADAPT_JUDGE_BASE_URL=server.base_url,
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),
    )
    study = ["langadapt", "study", "--config", str(config)]
    try:
        first = run_here(study, env=env)
        asked = len(server.requests)
        again = run_here(study, env=env)
    finally:
        server.stop()
    assert first.returncode == 0, first.stderr[-3000:]
    judged = [line for line in first.stdout.splitlines() if "] $ " in line and " judge " in line]
    assert len(judged) == 3  # base: paper; adapter: paper, and fastchat-pair against base
    assert "--rubric fastchat-pair --against" in judged[-1] and judged[-1].endswith("zh")
    # Two answers scored one by one, one pair judged in both orders.
    assert asked == 2 + 2
    out = tmp_path / "study" / "eval" / "zh-r4"
    assert list(out.rglob("judge_mtbench_langadapt_zh_*.jsonl"))
    (pair_file,) = out.rglob("pair_mtbench_langadapt_zh_*.jsonl")
    row = json.loads(pair_file.read_text(encoding="utf-8"))
    assert row["result"] == "tie"  # "[[A]]" in both orders: the orders disagree
    md = (tmp_path / "study" / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Pairwise" in md and "| zh-r4 vs base | 50.0 (50.0–50.0) | 0/1/0 | 0.0 |" in md
    assert again.returncode == 0 and "] $ " not in again.stdout and len(server.requests) == asked


def test_report_tables_of_pair_verdicts(tmp_path: Path) -> None:
    """The report reads the pair verdicts beside a model's answers: per comparison and
    language/turn the win rate, W/T/L and consistency; per category the win rate."""
    from langadapt_tasks.report import build_report

    def run(folder: str, pretrained: str) -> Path:
        path = tmp_path / folder / "results_2026-01-01T00-00-00.json"
        path.parent.mkdir(parents=True)
        data = {
            "results": {"mtbench_langadapt_zh_writing": {"lang_fidelity,none": 1.0}},
            "model_name": pretrained,
            "config": {"model_args": f"pretrained={pretrained}"},
        }
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    paths = [run("base", "org/base"), run("adapter", "org/adapter")]
    verdicts = [("A", "B", "writing"), ("A", "A", "writing"), ("B", "A", "math")]  # win tie loss
    rows = [
        {
            "model": "org/adapter",
            "against": "org/base",
            "lang": "zh",
            "turn": 1,
            "question_id": 81 + i,
            "category": category,
            "orders": {"AB": {"winner": ab}, "BA": {"winner": ba}},
            "result": combine(ab, ba),
            "judge": {"rubric": "fastchat-pair"},
        }
        for i, (ab, ba, category) in enumerate(verdicts)
    ]
    pair_file = tmp_path / "adapter" / "pair_mtbench_langadapt_zh_2026.jsonl"
    pair_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    md = build_report(paths, tmp_path / "report", names=["base", "adapter"])["markdown"]
    assert "| adapter vs base | 50.0 (" in md and "| 1/1/1 | 66.7 |" in md
    assert "Pairwise by category" in md
    assert "| adapter vs base (zh turn 1) | 75.0 (" in md  # writing: a win and a tie
