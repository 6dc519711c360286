"""cmmlu_langadapt through the real lm_eval API and CLI (with and without LoRA)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import CMMLU_SLICE, HFRun, lm_eval_bin
from in_process import run_here

from langadapt_tasks.benchmarks.cmmlu_subjects import CATEGORIES
from langadapt_tasks.benchmarks.scoring import format_views, load_results

GROUP = "cmmlu_langadapt"


def test_one_forward_pass_per_question(cmmlu_hf_run: HFRun, cmmlu_dir: Path) -> None:
    """Four choices, one token each, after a shared 5-shot context: lm-eval's ``hf`` backend
    makes one batch-of-one forward pass per distinct question (three whole subjects, and a
    slice on SmolLM2; a question asked twice in a subject has the same prompt, and lm-eval
    runs it once)."""
    import pandas as pd

    tasks = [f"{GROUP}_{s}" for s in cmmlu_hf_run.rows]
    assert set(cmmlu_hf_run.out["samples"]) == set(tasks)
    questions = sum(len(cmmlu_hf_run.out["samples"][t]) for t in tasks)
    assert questions == (105 + 106 + 123 if cmmlu_hf_run.whole else CMMLU_SLICE[1])  # CSV rows
    distinct = 0
    for subject, n in cmmlu_hf_run.rows.items():
        rows = pd.read_csv(cmmlu_dir / "test" / f"{subject}.csv", header=0, index_col=0)
        distinct += len(rows[:n][["Question", "A", "B", "C", "D"]].drop_duplicates())
    if cmmlu_hf_run.whole:
        assert distinct == questions - 1  # logical repeats one question
    assert cmmlu_hf_run.passes == [1] * distinct


def _samples(out: Path, task: str) -> list[dict]:
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    assert files, f"no samples file for {task} under {out}"
    return [json.loads(line) for line in files[-1].read_text(encoding="utf-8").splitlines()]


def _logged_acc(sample: dict) -> float:
    """1.0 when the highest of the four logged log-likelihoods is the target's (as CMMLU's
    argmax over A-D), else 0.0: computed from lm-eval's samples log (which stores numbers
    as text), not from its metric."""
    loglikelihoods = [float(resp[0]) for resp in sample["filtered_resps"]]
    return float(loglikelihoods.index(max(loglikelihoods)) == int(sample["target"]))


def test_cli_with_and_without_lora(
    cli_runs: dict[str, Path], lora_adapter: Path, cmmlu_dir: Path, tmp_path: Path
) -> None:
    """The shared ``lm_eval`` CLI run of the whole group with a LoRA adapter (``--limit 1``)."""
    stdout = (cli_runs["lora"].parent / "lora.stdout.txt").read_text(encoding="utf-8")
    # lm-eval's printed group table lists the group and its five categories.
    for category in CATEGORIES:
        assert f" - {category}" in stdout
    assert f"|{GROUP}" in stdout.replace(" ", "")

    results = load_results(cli_runs["lora"])
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
        logged = [s for n in members[category] for s in _samples(cli_runs["lora"], f"{GROUP}_{n}")]
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

    # The same question without the adapter (the base run): the log-likelihoods differ.
    task = f"{GROUP}_arts"
    base = [r[0] for r in _samples(cli_runs["base"], task)[0]["resps"]]
    lora = [r[0] for r in _samples(cli_runs["lora"], task)[0]["resps"]]
    assert len(base) == len(lora) == 4
    assert base != lora


def test_cli_fails_before_evaluating_without_data(tiny_llama_dir: Path, cmmlu_env) -> None:
    env = {k: v for k, v in cmmlu_env.items() if k != "LANGADAPT_CMMLU_DIR"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = run_here(
        [
            lm_eval_bin(),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={tiny_llama_dir}",
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


def test_cli_metadata_selects_local_dir(cli_runs: dict[str, Path], cmmlu_dir: Path) -> None:
    """The shared base run had no ``LANGADAPT_CMMLU_DIR`` and no Hub: only
    ``--metadata '{"cmmlu_dir": ...}'`` told it where the data is."""
    stdout = (cli_runs["base"].parent / "base.stdout.txt").read_text(encoding="utf-8")
    assert "world_religions" in stdout
    results = load_results(cli_runs["base"])
    # lm-eval records the task metadata it was given in each task's config.
    assert results["configs"][f"{GROUP}_arts"]["metadata"]["cmmlu_dir"] == str(cmmlu_dir)
