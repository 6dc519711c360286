"""cmmlu_langadapt through the real lm_eval API and CLI on SmolLM2 (with and without LoRA)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import lm_eval_bin, run_cli

from langadapt_tasks.cmmlu_subjects import CATEGORIES
from langadapt_tasks.scoring import format_views, load_results

GROUP = "cmmlu_langadapt"


@pytest.fixture(scope="module")
def lora_adapter(smollm2_dir: Path, tmp_path_factory) -> Path:
    """A tiny LoRA adapter with non-zero weights, so it changes the model's outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    config = LoraConfig(
        r=4,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(model, config).save_pretrained(out)
    return out


def test_one_forward_pass_per_question(smollm2_dir: Path, cmmlu_env) -> None:
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = HFLM(pretrained=str(smollm2_dir), batch_size=1, device=device)
    calls = []
    lm.model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    tasks = [f"{GROUP}_arts", f"{GROUP}_virology", f"{GROUP}_chinese_history"]
    results = lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=2)
    assert results is not None
    questions = sum(len(results["samples"][t]) for t in tasks)
    assert questions == 6
    # Four choices, one token each after a shared 5-shot context: one pass per question.
    assert len(calls) == questions
    assert sum(calls) == questions


def _samples(out: Path, task: str) -> list[dict]:
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    assert files, f"no samples file for {task} under {out}"
    return [json.loads(line) for line in files[-1].read_text(encoding="utf-8").splitlines()]


def _lm_eval(model_args: str, tasks: str, out: Path, env: dict[str, str]):
    return run_cli(
        [
            lm_eval_bin(),
            "--model",
            "hf",
            "--model_args",
            model_args,
            "--tasks",
            tasks,
            "--limit",
            "1",
            "--num_fewshot",
            "1",
            "--batch_size",
            "1",
            "--log_samples",
            "--output_path",
            str(out),
        ],
        env=env,
    )


def test_cli_with_and_without_lora(
    smollm2_dir: Path, lora_adapter: Path, cmmlu_env, tmp_path: Path
) -> None:
    proc = _lm_eval(
        f"pretrained={smollm2_dir},peft={lora_adapter}", GROUP, tmp_path / "lora", cmmlu_env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # lm-eval's printed group table lists the group and its five categories.
    for category in CATEGORIES:
        assert f" - {category}" in proc.stdout
    assert f"|{GROUP}" in proc.stdout.replace(" ", "")

    results = load_results(tmp_path / "lora")
    assert str(lora_adapter) in str(results["config"]["model_args"])
    table = results["results"]
    for category in CATEGORIES:
        entry = table[f"{GROUP}_{category}"]
        assert 0.0 <= entry["acc,none"] <= 1.0 and "acc_norm,none" in entry
    assert results["n-samples"][f"{GROUP}_arts"]["effective"] == 1
    views = format_views(results)
    assert set(views["lm_eval"]) == {*CATEGORIES, "average"}
    assert views["leaderboard"]["average"]["subjects"] == 67

    # The same question without the adapter: the answer log-likelihoods differ.
    task = f"{GROUP}_arts"
    proc = _lm_eval(f"pretrained={smollm2_dir}", task, tmp_path / "base", cmmlu_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    base = [r[0] for r in _samples(tmp_path / "base", task)[0]["resps"]]
    lora = [r[0] for r in _samples(tmp_path / "lora", task)[0]["resps"]]
    assert len(base) == len(lora) == 4
    assert base != lora


def test_cli_fails_before_evaluating_without_data(smollm2_dir: Path, cmmlu_env) -> None:
    env = {k: v for k, v in cmmlu_env.items() if k != "LANGADAPT_CMMLU_DIR"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = run_cli(
        [
            lm_eval_bin(),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={smollm2_dir}",
            "--tasks",
            f"{GROUP}_arts",
            "--limit",
            "1",
        ],
        env=env,
    )
    assert proc.returncode != 0
    assert "LANGADAPT_CMMLU_DIR" in proc.stderr and "cmmlu_dir" in proc.stderr
    assert "Running loglikelihood requests" not in proc.stderr


def test_cli_metadata_selects_local_dir(
    smollm2_dir: Path, cmmlu_dir: Path, cmmlu_env, tmp_path: Path
) -> None:
    env = {k: v for k, v in cmmlu_env.items() if k != "LANGADAPT_CMMLU_DIR"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = run_cli(
        [
            lm_eval_bin(),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={smollm2_dir}",
            "--tasks",
            f"{GROUP}_humanities",
            "--limit",
            "1",
            "--num_fewshot",
            "0",
            "--metadata",
            json.dumps({"cmmlu_dir": str(cmmlu_dir)}),
            "--output_path",
            str(tmp_path),
        ],
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world_religions" in proc.stdout
