"""MT-Bench through lm-eval's CLI (run in this process: ``in_process.run_here``) on the tiny
random Llama with SmolLM2's tokenizer and chat template, judged by a loopback server.

Generation is kept tiny (``--limit 1``, 16 new tokens).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import lm_eval_bin
from in_process import run_here
from judge_server import JudgeServer, Reply, prompt_of, verdict_for

from langadapt_tasks.benchmarks import mtbench as mtbench_data

pytestmark = pytest.mark.slow

KEY = "sk-lm-eval-SECRET-77aa"
ZH_SYSTEM = "你是一个乐于助人的助手,用中文回答问题,字数不超过300字"
TR_SYSTEM = "Sen yardımsever bir asistansın. Soruları Türkçe yanıtla ve 300 kelimeyi aşma."


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "LANGADAPT_JUDGE", "LANGADAPT_MTBENCH"))
    }
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env.update(extra)
    return env


def lm_eval(
    model: Path, tasks: str, out: Path | None, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    args = [
        lm_eval_bin(),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model}",
        "--tasks",
        tasks,
        "--limit",
        "1",
        "--gen_kwargs",
        "max_gen_toks=16",
        "--batch_size",
        "1",
        *extra,
    ]
    if out is not None:
        args += ["--log_samples", "--output_path", str(out)]
    return run_here(args, env=env)


def newest(root: Path, pattern: str) -> Path:
    found = sorted(root.rglob(pattern), key=lambda p: p.stat().st_mtime)
    assert found, f"no {pattern} under {root}"
    return found[-1]


def samples(root: Path, task: str) -> list[dict]:
    path = newest(root, f"samples_{task}_2*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def han_share(text: str) -> float:
    """Han characters among the letters (unicodedata's names and categories)."""
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    han = [ch for ch in letters if unicodedata.name(ch, "").startswith("CJK ")]
    return len(han) / len(letters) if letters else 0.0


def first_question(mt_bench_dir: Path, lang: str, category: str) -> dict:
    root = mt_bench_dir if lang == "zh" else None
    return next(q for q in mtbench_data.load_questions(root, lang) if q["category"] == category)


@pytest.fixture(scope="module")
def server() -> Iterator[JudgeServer]:
    srv = JudgeServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def turn1(
    tiny_llama_dir: Path,
    mt_bench_dir: Path,
    server: JudgeServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict:
    """One run of both languages' turn-1 groups under the chat template.

    The judge cannot score the Chinese coding answer (it never replies with a
    number), so that category must show up as unscored.
    """
    root = tmp_path_factory.mktemp("mtbench")
    zh_coding = first_question(mt_bench_dir, "zh", "coding")["turns"][0]
    server.responder = lambda body, n: (
        Reply("这个回答还可以。") if zh_coding in prompt_of(body) else verdict_for(body)
    )
    env = clean_env(
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=server.base_url,
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),
        LANGADAPT_JUDGE_CACHE=str(root / "cache.sqlite"),
        # A module fixture runs before the per-test home is set: its own, never ~/.cache.
        LANGADAPT_HOME=str(root / "home"),
        XDG_CACHE_HOME=str(root / "cache"),
    )
    out = root / "out"
    both = "mtbench_langadapt_zh,mtbench_langadapt_tr"
    proc = lm_eval(tiny_llama_dir, both, out, env, "--apply_chat_template")
    requests = list(server.requests)
    server.responder = lambda body, n: verdict_for(body)
    return {"proc": proc, "out": out, "env": env, "root": root, "requests": requests}


def test_turn1_scores_per_category_with_unscored_and_fidelity(turn1) -> None:
    proc, out = turn1["proc"], turn1["out"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    # lm-eval's table: both groups, every category, the three metrics.
    for name in (
        "mtbench_langadapt_zh",
        "mtbench_langadapt_tr",
        *mtbench_data.CATEGORIES,
        "judge_score",
        "judge_unscored",
        "lang_fidelity",
    ):
        assert name in proc.stdout, name
    results = json.loads(newest(out, "results_*.json").read_text(encoding="utf-8"))["results"]
    for lang in ("zh", "tr"):
        logged = []
        for cat in mtbench_data.CATEGORIES:
            entry = results[f"mtbench_langadapt_{lang}_{cat}"]
            (sample,) = samples(out, f"mtbench_langadapt_{lang}_{cat}")
            logged.append(sample["lang_fidelity"])
            # The category's value is its one answer's, as lm-eval logged it...
            assert entry["lang_fidelity,none"] == sample["lang_fidelity"]
            answer = sample["filtered_resps"][0]
            if lang == "zh" and "`" not in answer:  # ...which for Chinese is the Han share
                assert sample["lang_fidelity"] == pytest.approx(han_share(answer))
            if (lang, cat) == ("zh", "coding"):
                assert entry["judge_unscored,none"] == 1
                assert math.isnan(entry["judge_score,none"])  # unscored is not a 0
            else:
                assert entry["judge_unscored,none"] == 0
                assert entry["judge_score,none"] == 4.0
        # The group: size-weighted mean of its eight one-answer categories.
        group = results[f"mtbench_langadapt_{lang}"]
        assert group["lang_fidelity,none"] == pytest.approx(sum(logged) / len(logged))
    assert results["mtbench_langadapt_tr"]["judge_score,none"] == 4.0
    # 16 answers; the coding one was asked 1 + 2 re-asks times.
    assert len(turn1["requests"]) == 16 + 2


def test_system_prompt_reaches_the_model_as_system_message(turn1) -> None:
    zh = samples(turn1["out"], "mtbench_langadapt_zh_writing")[0]
    prompt = zh["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith(f"<|im_start|>system\n{ZH_SYSTEM}")
    assert f"<|im_start|>user\n{zh['doc']['turns'][0]}<|im_end|>" in prompt
    tr = samples(turn1["out"], "mtbench_langadapt_tr_math")[0]
    assert tr["arguments"]["gen_args_0"]["arg_0"].startswith(f"<|im_start|>system\n{TR_SYSTEM}")


def test_verdicts_file_next_to_samples(turn1) -> None:
    verdicts = newest(turn1["out"], "judge_mtbench_langadapt_zh_2*.jsonl")
    assert verdicts.parent == newest(turn1["out"], "samples_mtbench_langadapt_zh_*").parent
    rows = [json.loads(line) for line in verdicts.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 8
    coding = next(r for r in rows if r["category"] == "coding")
    assert coding["unscored"] and coding["score"] is None and len(coding["judge_replies"]) == 3
    writing = next(r for r in rows if r["category"] == "writing")
    assert writing["score"] == 4.0 and writing["judge_replies"] == ["4"]
    # Inside lm_eval the rows carry the evaluated model (lm-eval's model name) and a time.
    results = json.loads(newest(turn1["out"], "results_*.json").read_text(encoding="utf-8"))
    assert {r["model"] for r in rows} == {results["model_name"]}
    assert all(r["judged_at"] and r["id"].startswith(results["model_name"] + "|") for r in rows)


def test_langadapt_judge_over_two_models_writes_each_beside_its_samples(
    turn1, server: JudgeServer, tmp_path: Path
) -> None:
    """Issue 9.5 on real lm_eval output: a second model's folder is the first run's copy
    with another model in its results and other answers; `langadapt judge OUT` judges
    2 x N answers and writes one verdict file per language in each model's folder."""
    import shutil

    (run,) = [p for p in turn1["out"].iterdir() if p.is_dir()]
    out = tmp_path / "out"
    first = shutil.copytree(run, out / run.name)
    second = out / "adapter-b"
    second.mkdir()
    for path in first.glob("samples_mtbench_langadapt_*.jsonl"):
        lines = []
        for line in path.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            sample["resps"] = [[r + "（B）" for r in sample["resps"][0]]]
            sample["filtered_resps"] = [r + "（B）" for r in sample["filtered_resps"]]
            lines.append(json.dumps(sample, ensure_ascii=False))
        (second / path.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    for path in first.glob("results_*.json"):
        results = json.loads(path.read_text(encoding="utf-8"))
        results["model_name"] = "adapter-b"
        results["config"]["model_args"] = f"pretrained={results['config']['model_args']},peft=b"
        (second / path.name).write_text(json.dumps(results), encoding="utf-8")
    for path in out.rglob("judge_*.jsonl"):
        path.unlink()
    n = sum(1 for p in first.glob("samples_*.jsonl") for _ in p.open(encoding="utf-8"))
    before = len(server.requests)
    cache = tmp_path / "cache.sqlite"
    args = ["langadapt", "judge", str(out), "--rubric", "paper-guarded", "--cache", str(cache)]
    proc = run_here(args, env=turn1["env"])
    assert proc.returncode == 0, proc.stderr
    assert len(server.requests) - before == 2 * n == 32
    for folder, model in (
        (first, json.loads(newest(first, "results_*.json").read_text())),
        (second, {"model_name": "adapter-b"}),
    ):
        written = sorted(p.name.rsplit("_", 1)[0] for p in folder.glob("judge_*.jsonl"))
        assert written == ["judge_mtbench_langadapt_tr", "judge_mtbench_langadapt_zh"]
        for path in folder.glob("judge_*.jsonl"):
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            assert len(rows) == n // 2
            assert {r["model"] for r in rows} == {model["model_name"]}
            assert all(r["score"] == 4.0 for r in rows)
            assert all(r["answers"][0].endswith("（B）") == (folder == second) for r in rows)


def test_langadapt_judge_rejudges_the_run_and_caches(turn1, server: JudgeServer) -> None:
    before = len(server.requests)
    args = ["langadapt", "judge", str(turn1["out"]), "--rubric", "fastchat"]
    proc = run_here(args, env=turn1["env"])
    assert proc.returncode == 0, proc.stderr
    assert "| **mtbench_langadapt_zh** | 7.00 | 0 |" in proc.stdout
    assert "| **mtbench_langadapt_tr** | 7.00 | 0 |" in proc.stdout
    assert len(server.requests) - before == 16
    again = run_here(args, env=turn1["env"])
    assert again.returncode == 0, again.stderr
    assert len(server.requests) - before == 16  # the second run made no request


def test_turn2_feeds_the_model_its_own_first_answer(
    turn1, tiny_llama_dir: Path, server: JudgeServer
) -> None:
    before = len(server.requests)
    out = turn1["root"] / "out_mt"
    env = {**turn1["env"], "LANGADAPT_MTBENCH_TURN1": str(turn1["out"])}
    task = "mtbench_langadapt_zh_mt_math"
    proc = lm_eval(tiny_llama_dir, task, out, env, "--apply_chat_template")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = samples(turn1["out"], "mtbench_langadapt_zh_math")[0]
    second = samples(out, "mtbench_langadapt_zh_mt_math")[0]
    answer_1 = first["filtered_resps"][0]
    assert second["doc"]["answer_1"] == answer_1
    prompt = second["arguments"]["gen_args_0"]["arg_0"]
    turns = second["doc"]["turns"]
    expected = (
        f"<|im_start|>user\n{turns[0]}<|im_end|>\n<|im_start|>assistant\n{answer_1}"
        f"<|im_end|>\n<|im_start|>user\n{turns[1]}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert prompt.startswith(f"<|im_start|>system\n{ZH_SYSTEM}") and prompt.endswith(expected)
    judged = server.requests[before:]
    assert len(judged) == 1
    assert answer_1 in prompt_of(judged[0]) and second["filtered_resps"][0] in prompt_of(judged[0])
    assert turns[1] in prompt_of(judged[0])  # the judge sees both turns


def test_judge_off_plain_text_records_fidelity_only(
    tiny_llama_dir: Path, mt_bench_dir: Path, tmp_path: Path
) -> None:
    env = clean_env(LANGADAPT_MTBENCH_DIR=str(mt_bench_dir))
    off = ["--metadata", '{"judge": "off"}']
    proc = lm_eval(tiny_llama_dir, "mtbench_langadapt_tr_writing", tmp_path, env, *off)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(newest(tmp_path, "results_*.json").read_text(encoding="utf-8"))
    entry = results["results"]["mtbench_langadapt_tr_writing"]
    sample = samples(tmp_path, "mtbench_langadapt_tr_writing")[0]
    assert entry["lang_fidelity,none"] == sample["lang_fidelity"]  # the one answer's value
    assert "judge_score,none" not in entry
    # No chat template: the system prompt is plain text before the question.
    assert sample["arguments"]["gen_args_0"]["arg_0"] == (
        f"{TR_SYSTEM}\n\n{sample['doc']['turns'][0]}"
    )
    assert not list(tmp_path.rglob("judge_*.jsonl"))


def test_no_judge_fails_before_generation(mt_bench_dir: Path, tmp_path: Path) -> None:
    # lm-eval's dummy model: nothing to load, and the run must stop at task loading anyway.
    env = clean_env(LANGADAPT_MTBENCH_DIR=str(mt_bench_dir))
    args = [lm_eval_bin(), "--model", "dummy", "--tasks", "mtbench_langadapt_zh", "--limit", "1"]
    proc = run_here([*args, "--output_path", str(tmp_path), "--log_samples"], env=env)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "OPENAI_API_KEY" in output and "OPENAI_BASE_URL" in output
    assert '"judge": "off"' in output
    assert "Running generate_until" not in output
    assert not list(tmp_path.rglob("*.json*"))


def test_api_key_is_in_no_output_file(turn1, server: JudgeServer) -> None:
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"  # it was used...
    files = [p for p in turn1["root"].rglob("*") if p.is_file()]
    assert any(p.name.startswith("judge_") for p in files)
    assert any(p.name.startswith("cache.sqlite") for p in files)
    for path in files:  # ...and written nowhere
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in turn1["proc"].stdout + turn1["proc"].stderr
