"""cmmlu_langadapt through the real lm_eval API and CLI on SmolLM2 (with and without LoRA)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from conftest import lm_eval_bin, run_cli, task_manager

from langadapt_tasks.cmmlu.subjects import CATEGORIES
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
    manager = task_manager(cmmlu_dir=os.environ["LANGADAPT_CMMLU_DIR"])
    results = lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=2, task_manager=manager)
    assert set(results["samples"]) == set(tasks)
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


def _logged_acc(sample: dict) -> float:
    """1.0 when the highest of the four logged log-likelihoods is the target's (as CMMLU's
    argmax over A-D), else 0.0: computed from lm-eval's samples log (which stores numbers
    as text), not from its metric."""
    loglikelihoods = [float(resp[0]) for resp in sample["filtered_resps"]]
    return float(loglikelihoods.index(max(loglikelihoods)) == int(sample["target"]))


def test_cli_with_and_without_lora(
    smollm2_dir: Path, lora_adapter: Path, cmmlu_env, cmmlu_dir: Path, tmp_path: Path
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
    # Each category's acc is the size-weighted mean over its subjects' logged samples
    # (one per subject with --limit 1); the categories come from CMMLU's subject table.
    with (cmmlu_dir / "SUBJECTS.tsv").open(encoding="utf-8") as fh:
        members: dict[str, list[str]] = {}
        for row in csv.DictReader(fh, delimiter="\t"):
            members.setdefault(row["partition_category"], []).append(row["subject"])
    assert set(members) == set(CATEGORIES)
    for category in CATEGORIES:
        logged = [s for n in members[category] for s in _samples(tmp_path / "lora", f"{GROUP}_{n}")]
        assert len(logged) == len(members[category])
        for sample in logged:
            assert sample["acc"] == _logged_acc(sample)
            assert sample["acc_norm"] == sample["acc"]  # the choices are one letter each
        expected = sum(_logged_acc(s) for s in logged) / len(logged)
        entry = table[f"{GROUP}_{category}"]
        assert entry["acc,none"] == pytest.approx(expected)
        assert entry["acc_norm,none"] == pytest.approx(expected)
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
