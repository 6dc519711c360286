"""lm-eval's data parallel under ``accelerate launch``: two CPU processes (gloo) through
``langadapt-hf`` give the one-process results, each process scoring its share."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import REPO, lm_eval_bin, run_cli

DDP = REPO / "configs" / "accelerate" / "ddp.yaml"
TASKS = "cmmlu_langadapt_philosophy,mtbench_langadapt_zh"


def _outputs(folder: Path) -> tuple[dict, dict[str, list[dict]]]:
    (results,) = folder.rglob("results_*.json")
    samples = {}
    for path in folder.rglob("samples_*.jsonl"):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        samples[task] = sorted(rows, key=lambda row: row["doc_id"])
    return json.loads(results.read_text(encoding="utf-8")), samples


@pytest.mark.slow
@pytest.mark.e2e
def test_two_cpu_processes_give_the_one_process_results(
    tiny_llama_dir: Path, cmmlu_dir: Path, mt_bench_dir: Path, tmp_path: Path
) -> None:
    """On the tiny random Llama (SmolLM2's tokenizer): the protocol of data parallel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGADAPT_J"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        LANGADAPT_CMMLU_DIR=str(cmmlu_dir),
        LANGADAPT_MTBENCH_DIR=str(mt_bench_dir),
        CUDA_VISIBLE_DEVICES="",  # no GPU: the processes meet over gloo
        # One core per process, and for the one-process run too: the same arithmetic, so
        # the same log-likelihoods to the bit and the same greedy answers.
        OMP_NUM_THREADS="1",
    )
    args = ["--model", "langadapt-hf", "--model_args", f"pretrained={tiny_llama_dir},dtype=float32"]
    args += ["--tasks", TASKS, "--limit", "2", "--batch_size", "1", "--log_samples"]
    # Greedy everywhere (FastChat samples some categories: each process has its own stream).
    args += ["--gen_kwargs", "max_gen_toks=8,do_sample=False,temperature=0"]
    args += ["--metadata", json.dumps({"judge": "off"})]
    one = run_cli([lm_eval_bin(), *args, "--output_path", str(tmp_path / "one")], env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP)]
    launch += ["--num_processes", "2", "-m", "lm_eval"]
    two = run_cli([*launch, *args, "--output_path", str(tmp_path / "two")], env=env)
    assert two.returncode == 0, two.stderr[-3000:]

    # Each process built its share of every task (lm-eval logs the rank it builds on).
    tasks = 1 + 8  # the CMMLU subject and MT-Bench zh's eight categories
    for rank in (0, 1):
        assert two.stderr.count(f"on rank {rank}...") == tasks, two.stderr[-3000:]
    # One writer: one results file and one samples file per task, as in one process.
    results_one, samples_one = _outputs(tmp_path / "one")
    results_two, samples_two = _outputs(tmp_path / "two")
    assert len(samples_two) == tasks and set(samples_two) == set(samples_one)
    assert results_two["results"] == results_one["results"]
    for task, rows in samples_one.items():
        assert len(rows) == 2  # --limit 2
        assert [r["doc_id"] for r in samples_two[task]] == [r["doc_id"] for r in rows]
        for mine, theirs in zip(samples_two[task], rows, strict=True):
            if task.startswith("mtbench"):  # greedy: the same text
                assert mine["filtered_resps"] == theirs["filtered_resps"], task
                continue
            # (log-likelihood, is greedy) per choice. A process holding one question of the
            # subject has no prefix to share and scores it as hf does: equal within 1e-4.
            for (ll, greedy), (ll_1, greedy_1) in zip(
                mine["filtered_resps"], theirs["filtered_resps"], strict=True
            ):
                assert float(ll) == pytest.approx(float(ll_1), abs=1e-4) and greedy == greedy_1


def test_judging_inside_lm_eval_is_refused_in_several_processes(
    mt_bench_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lm-eval aggregates on the first process only: a judge there would see half the
    answers. Judge off (the study's way: `langadapt judge` afterwards) is accepted."""
    from langadapt_tasks.judge.settings import JudgeConfigError
    from langadapt_tasks.mtbench.hooks import load_docs

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(JudgeConfigError, match=r"one process only, and this is one of 2"):
        load_docs("zh", "writing", mtbench_dir=str(mt_bench_dir))
    docs = load_docs("zh", "writing", mtbench_dir=str(mt_bench_dir), judge="off")
    lines = (mt_bench_dir / "zh" / "question.jsonl").read_text(encoding="utf-8").splitlines()
    writing = [q for q in map(json.loads, lines) if q["category"] == "writing"]
    assert [d["question_id"] for d in docs["test"]] == [q["question_id"] for q in writing]
