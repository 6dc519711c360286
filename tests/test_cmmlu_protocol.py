"""cmmlu_langadapt against CMMLU's own evaluation code, re-stated here from its source.

The reference is haonan-li/CMMLU: ``src/mp_utils.py`` (``format_example``,
``gen_prompt``, data read with ``pd.read_csv(..., header=0, index_col=0)``) and
``src/hf_causal_model.py`` (``eval``: ``tokenizer(prompt)``, one forward pass,
argmax over the last position's logits of ``convert_tokens_to_ids`` of A-D).
The functions below transcribe that code; they do not use langadapt.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CMMLU_SLICE, HFRun, task_manager

CHOICES = ["A", "B", "C", "D"]
# A random-weight model can score two letters almost alike: argmaxes are compared only where
# the reference's top two logits differ by more than this (float32 rounding is far below).
TIE = 1e-4
MAX_TIES = 3


# --- CMMLU's src/mp_utils.py, transcribed -------------------------------------------------
def format_example(df, idx: int, include_answer: bool = True) -> str:
    prompt = "题目：" + df.iloc[idx, 0]
    k = df.shape[1] - 2
    for j in range(k):
        prompt += f"\n{CHOICES[j]}. {df.iloc[idx, j + 1]}"
    prompt += "\n答案是："
    if include_answer:
        prompt += f"{df.iloc[idx, k + 1]}\n\n"
    return prompt


def gen_prompt(dev_df, name_zh: str, prompt_end: str, num_few_shot: int, tokenizer, max_length):
    prompt = f"以下是关于{name_zh}的单项选择题，请直接给出正确答案的选项。\n\n"
    start_end_token_len = len(tokenizer.encode(prompt) + tokenizer.encode(prompt_end))
    if start_end_token_len > max_length:
        return prompt_end
    prompt_list = []
    if num_few_shot > 0:
        for i in range(num_few_shot):
            example = format_example(dev_df, i)
            prompt_list.append((example, tokenizer.encode(example)))
        while prompt_list != [] and sum(len(e[1]) for e in prompt_list) >= (
            max_length - start_end_token_len
        ):
            longest_length = max([len(e[1]) for e in prompt_list])
            prompt_list = [e for e in prompt_list if len(e[1]) != longest_length]
        for p in prompt_list:
            prompt += p[0]
    return prompt + prompt_end


def name_zh(cmmlu_dir: Path, subject: str) -> str:
    """CMMLU's ``name_en2zh`` (src/categories.py), as the data's SUBJECTS.tsv lists it."""
    import csv

    with (cmmlu_dir / "SUBJECTS.tsv").open(encoding="utf-8") as fh:
        return {r["subject"]: r["name_zh"] for r in csv.DictReader(fh, delimiter="\t")}[subject]


def reference_prompts(cmmlu_dir: Path, subject: str, tokenizer, max_length=2048, shots=5):
    import pandas as pd

    dev_df = pd.read_csv(cmmlu_dir / "dev" / f"{subject}.csv", header=0, index_col=0)
    test_df = pd.read_csv(cmmlu_dir / "test" / f"{subject}.csv", header=0, index_col=0)
    name = name_zh(cmmlu_dir, subject)
    prompts = []
    for i in range(test_df.shape[0]):
        prompt_end = format_example(test_df, i, include_answer=False)
        prompts.append(gen_prompt(dev_df, name, prompt_end, shots, tokenizer, max_length))
    return prompts, list(test_df.iloc[:, test_df.shape[1] - 1])


# --- CMMLU's src/hf_causal_model.py eval(), transcribed (CPU instead of cuda) ---------------
def reference_predictions(
    model, tokenizer, prompts: list[str], seen=None, margins: list[float] | None = None
) -> list[str]:
    """``seen``: the last-position logits of forward passes already made on the same input
    ids (by lm-eval, on the same model). The forward pass is deterministic, so reusing it
    is the same computation done once; the test re-runs a sample to show it. ``margins``
    (not CMMLU's): receives each question's gap between its two highest letter logits."""
    import numpy as np
    import torch

    choice_ids = [tokenizer.convert_tokens_to_ids(choice) for choice in CHOICES]
    preds = []
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt")
        if "token_type_ids" in inputs:
            inputs.pop("token_type_ids")
        key = tuple(inputs["input_ids"][0].tolist())
        if seen is not None and key in seen:
            logits = seen[key][None, :]
        else:
            with torch.no_grad():
                logits = model(**inputs).logits[:, -1, :]
        choice_logits = logits[:, choice_ids].detach().cpu().numpy()
        if margins is not None:
            top = np.sort(choice_logits[0])
            margins.append(float(top[-1] - top[-2]))
        preds.append({0: "A", 1: "B", 2: "C", 3: "D"}[int(np.argmax(choice_logits[0]))])
    return preds


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir, trust_remote_code=True)


def _lm_eval_prompts(task, docs) -> list[str]:
    return [task.fewshot_context(doc=doc, num_fewshot=task.config.num_fewshot) for doc in docs]


@pytest.mark.parametrize("max_length", [2048, 900, 450])
def test_prompts_equal_cmmlu_gen_prompt(
    cmmlu_dir: Path, smollm2_dir: Path, tokenizer, max_length: int
) -> None:
    """Every question's prompt, byte for byte; a small budget exercises shot dropping."""

    subjects = ["chinese_history", "college_law"]
    metadata = {"cmmlu_dir": str(cmmlu_dir), "pretrained": str(smollm2_dir)}
    if max_length != 2048:
        metadata["cmmlu_max_length"] = max_length
    tasks = task_manager(**metadata).load([f"cmmlu_langadapt_{s}" for s in subjects])
    shot_counts: set[int] = set()
    headerless = 0
    for subject in subjects:
        task = tasks["tasks"][f"cmmlu_langadapt_{subject}"]
        expected, _ = reference_prompts(cmmlu_dir, subject, tokenizer, max_length)
        ours = _lm_eval_prompts(task, task.test_docs())
        assert len(ours) == len(expected)
        for i, (a, b) in enumerate(zip(ours, expected, strict=True)):
            assert a == b, f"{subject} question {i}: prompts differ"
        shot_counts |= {p.count("答案是：") - 1 for p in expected}
        headerless += sum(not p.startswith("以下是关于") for p in expected)
    if max_length == 2048:
        assert shot_counts == {5}
        assert headerless == 0
    else:  # the rule dropped shots; at 450 every shot and some headers too
        assert len(shot_counts) >= 2 and min(shot_counts) < 5
    if max_length == 450:
        assert min(shot_counts) == 0 and headerless > 0


def test_num_fewshot_override_drops_from_the_first_n(
    cmmlu_dir: Path, smollm2_dir: Path, tokenizer
) -> None:
    """``--num_fewshot 3``: CMMLU's ``--num_few_shot 3``, the same rule on three shots."""

    metadata = {
        "cmmlu_dir": str(cmmlu_dir),
        "pretrained": str(smollm2_dir),
        "cmmlu_max_length": 600,
    }
    task = task_manager(**metadata).load(["cmmlu_langadapt_chinese_history"])["tasks"][
        "cmmlu_langadapt_chinese_history"
    ]
    expected, _ = reference_prompts(cmmlu_dir, "chinese_history", tokenizer, 600, shots=3)
    docs = task.test_docs()
    assert [task.fewshot_context(doc=d, num_fewshot=3) for d in docs] == expected


def test_predictions_equal_cmmlu_eval(cmmlu_dir: Path, cmmlu_hf_run: HFRun, tokenizer) -> None:
    """lm_eval with cmmlu_langadapt (5-shot default, ``hf`` backend) vs CMMLU's eval(),
    question by question: three whole subjects (the smallest by prompt tokens: 334
    questions, about 204k tokens) on the random-weight Llama, and a slice (``CMMLU_SLICE``)
    on SmolLM2.

    Both sides use one model instance: lm-eval's. Its forward passes are recorded. The
    reference reuses a recorded pass only when its own input ids are identical. It
    recomputes the first question of each subject to show that the reuse changes nothing.
    """
    import numpy as np
    import torch

    out, model, seen = cmmlu_hf_run.out, cmmlu_hf_run.lm.model, cmmlu_hf_run.seen
    agree = total = reused = ties = 0
    for subject, rows in cmmlu_hf_run.rows.items():
        samples = sorted(out["samples"][f"cmmlu_langadapt_{subject}"], key=lambda s: s["doc_id"])
        prompts, answers = reference_prompts(cmmlu_dir, subject, tokenizer)
        prompts, answers = prompts[:rows], answers[:rows]
        assert len(samples) == len(prompts) == len(answers) == rows
        assert [s["arguments"][0][0] for s in samples] == prompts
        assert [s["arguments"][0][1] for s in samples] == ["A"] * len(prompts)
        # resps: per choice, the list of responses [(log-likelihood, is_greedy)]
        ours = [CHOICES[int(np.argmax([r[0][0] for r in s["resps"]]))] for s in samples]
        margins: list[float] = []
        theirs = reference_predictions(model, tokenizer, prompts, seen, margins)
        assert theirs[:1] == reference_predictions(model, tokenizer, prompts[:1])
        first = tokenizer(prompts[0], return_tensors="pt")["input_ids"]
        with torch.no_grad():
            fresh = model(first).logits[0, -1, :]
        assert torch.equal(fresh, seen[tuple(first[0].tolist())])
        reused += sum(tuple(tokenizer(p)["input_ids"]) in seen for p in prompts)
        clear = [m > TIE for m in margins]
        ties += clear.count(False)
        agree += sum(a == b for a, b in zip(ours, theirs, strict=True))
        total += len(prompts)
        pairs = [(a, b) for a, b, c in zip(ours, theirs, clear, strict=True) if c]
        assert all(a == b for a, b in pairs), f"{subject}: predictions differ"
        # lm-eval's acc is the reference's accuracy on the same predictions.
        reference = theirs if all(clear) else ours  # a tie may go either way
        acc = np.mean([p == a for p, a in zip(reference, answers, strict=True)])
        assert out["results"][f"cmmlu_langadapt_{subject}"]["acc,none"] == pytest.approx(acc)
    n = len(cmmlu_hf_run.rows)
    print(
        f"CMMLU agreement on {cmmlu_hf_run.model_dir.name}: {n} subjects, {total} questions, "
        f"{agree}/{total} equal; {ties} within {TIE} of a tie (not compared)"
    )
    assert ties <= MAX_TIES
    # Each question was one forward pass on exactly the reference's input ids (the test
    # rows of the CSV files: 105 + 106 + 123 for the three whole subjects).
    assert (total, reused) == (sum(cmmlu_hf_run.rows.values()),) * 2
    assert total == (105 + 106 + 123 if cmmlu_hf_run.whole else CMMLU_SLICE[1])
