"""``heldout_langadapt``: bits per byte of a held-out file's assistant messages, through lm-eval,
against the same figure computed here with transformers alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import lm_eval_bin
from in_process import run_here

from langadapt_tasks.benchmarks.heldout import HeldoutDataError, heldout_file, read_rows

SYSTEM = "你是一个乐于助人的助手。"
ROWS = [
    [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "中国的首都是哪里？"},
        {"role": "assistant", "content": "中国的首都是北京。"},
    ],
    [
        {"role": "user", "content": "把“谢谢”翻译成英文。"},
        {"role": "assistant", "content": "Thank you."},
        {"role": "user", "content": "再翻译成法语。"},
        {"role": "assistant", "content": "Merci.\n"},  # the newline is scored too
    ],
    [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "用一句话介绍长城。"},
        {"role": "assistant", "content": "长城是中国古代修建的军事防御工程，绵延万余里。"},
    ],
]


def write_heldout(path: Path, rows: list[list[dict]]) -> Path:
    lines = [json.dumps({"messages": m}, ensure_ascii=False) for m in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reference(model_dir: Path, rows: list[list[dict]]) -> tuple[list[float], int]:
    """Per assistant message, the log-likelihood of its tokens after the chat template of the
    messages before it (add_generation_prompt=True), every other token masked; and the UTF-8
    bytes of all contents. transformers alone. As lm-eval pairs a context with a
    continuation (``TemplateLM._encode_pair``), whitespace that ends the rendered context
    (ChatML's newline after ``assistant``) is scored with the message."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    logliks, total_bytes = [], 0
    for messages in rows:
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            context = tokenizer.apply_chat_template(
                messages[:i], tokenize=False, add_generation_prompt=True
            )
            ids = tokenizer(context + message["content"], add_special_tokens=False)["input_ids"]
            head = tokenizer(context.rstrip(), add_special_tokens=False)["input_ids"]
            labels = torch.tensor([ids])
            labels[0, : len(head)] = -100  # only the assistant message's tokens count
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, :-1]  # fp32, as lm-eval
            targets = labels[0, 1:]
            scored = targets != -100
            logprobs = torch.log_softmax(logits, dim=-1)[scored, targets[scored]]
            logliks.append(float(logprobs.sum()))
            total_bytes += len(message["content"].encode("utf-8"))
    return logliks, total_bytes


def run_task(model: str, model_dir: Path, heldout: Path, out: Path, *extra: str) -> dict:
    args = [
        lm_eval_bin(),
        "--model",
        model,
        "--model_args",
        f"pretrained={model_dir},dtype=float32",
    ]
    args += ["--tasks", "heldout_langadapt", "--batch_size", "1", "--device", "cpu"]
    args += ["--metadata", json.dumps({"heldout_file": str(heldout)}), *extra]
    proc = run_here([*args, "--log_samples", "--output_path", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text(encoding="utf-8"))
    (path,) = out.rglob("samples_heldout_langadapt_*.jsonl")
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {"results": results["results"]["heldout_langadapt"], "samples": samples}


def test_bits_per_byte_equals_the_transformers_computation(
    smollm2_dir: Path, tmp_path: Path
) -> None:
    heldout = write_heldout(tmp_path / "heldout.jsonl", ROWS)
    ours = run_task("hf", smollm2_dir, heldout, tmp_path / "out")
    logliks, total_bytes = reference(smollm2_dir, ROWS)
    samples = sorted(ours["samples"], key=lambda s: s["doc_id"])
    assert len(samples) == len(logliks) == 4  # one document per assistant message
    for sample, expected in zip(samples, logliks, strict=True):
        assert sample["bits_per_byte"][0] == pytest.approx(expected, abs=1e-4)
    expected_bpb = -sum(logliks) / (math.log(2) * total_bytes)
    assert ours["results"]["bits_per_byte,none"] == pytest.approx(expected_bpb, abs=1e-4)
    assert ours["results"]["byte_perplexity,none"] == pytest.approx(
        math.exp(-sum(logliks) / total_bytes), rel=1e-4
    )
    # The context is SmolLM2's ChatML up to the assistant's turn; the target is the content.
    second = samples[1]
    assert second["arguments"]["gen_args_0"]["arg_0"].endswith(
        "<|im_start|>user\n把“谢谢”翻译成英文。<|im_end|>\n<|im_start|>assistant\n"
    )
    assert samples[2]["arguments"]["gen_args_0"]["arg_1"] == "Merci.\n"
    got = ours["results"]["bits_per_byte,none"]
    print(f"bits per byte: lm-eval {got:.6f}, transformers {expected_bpb:.6f}")


def test_langadapt_hf_scores_it_as_hf(tiny_llama_dir: Path, tmp_path: Path) -> None:
    heldout = write_heldout(tmp_path / "heldout.jsonl", ROWS)
    hf = run_task("hf", tiny_llama_dir, heldout, tmp_path / "hf")
    ours = run_task("langadapt-hf", tiny_llama_dir, heldout, tmp_path / "ours")
    for metric in ("bits_per_byte,none", "byte_perplexity,none", "token_nll,none"):
        assert ours["results"][metric] == pytest.approx(hf["results"][metric], abs=1e-4)


def test_a_held_out_file_is_named_and_checked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LANGADAPT_HELDOUT_FILE", raising=False)
    with pytest.raises(HeldoutDataError, match=r"heldout_file.*LANGADAPT_HELDOUT_FILE"):
        heldout_file({})
    with pytest.raises(HeldoutDataError, match="is not a file"):
        heldout_file({"heldout_file": str(tmp_path / "missing.jsonl")})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"messages": ROWS[0]}) + "\n" + json.dumps({"messages": ROWS[0][:2]}) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(HeldoutDataError, match=rf"{bad}, line 2: no assistant message"):
        read_rows(bad)
    bad.write_text('{"messages": [{"role": "bot", "content": "x"}]}\n', encoding="utf-8")
    with pytest.raises(HeldoutDataError, match=r"line 1: message 0 needs a role"):
        read_rows(bad)


def test_a_language_of_ones_own_scores_its_specs_held_out_file(
    tiny_llama_dir: Path, tmp_path: Path
) -> None:
    """``heldout_langadapt_<code>`` of a user language (``langadapt language-yamls``) reads
    the spec's ``heldout_file`` when none is named, and scores what the generic task does."""
    from test_languages import make_language

    from langadapt_tasks.generate.mtbench import write_language

    spec = make_language(tmp_path / "pirate")
    write_heldout(spec.parent / "heldout.jsonl", ROWS)
    data = {**json.loads(spec.read_text(encoding="utf-8")), "heldout_file": "heldout.jsonl"}
    spec.write_text(json.dumps(data), encoding="utf-8")
    tasks = tmp_path / "tasks"
    write_language(spec, tasks)
    out = tmp_path / "own"
    args = [lm_eval_bin(), "--model", "hf", "--model_args", f"pretrained={tiny_llama_dir}"]
    args += ["--tasks", "heldout_langadapt_pir", "--include_path", str(tasks)]
    proc = run_here([*args, "--batch_size", "1", "--device", "cpu", "--output_path", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    own = json.loads(next(out.rglob("results_*.json")).read_text(encoding="utf-8"))
    generic = run_task("hf", tiny_llama_dir, spec.parent / "heldout.jsonl", tmp_path / "generic")
    row = own["results"]["heldout_langadapt_pir"]
    assert row["bits_per_byte,none"] == pytest.approx(
        generic["results"]["bits_per_byte,none"], abs=1e-9
    )


def test_the_reports_standard_error_is_the_ratio_estimators() -> None:
    """bits per byte = Σb/ΣB over messages; its standard error by the delta method, written
    out here from the textbook formula: Var(R) ≈ (1/(n μ_B²)) · s²(b − R·B)."""
    from statistics import fmean, variance

    from langadapt_tasks.report.heldout import ratio_stderr

    bits = [120.0, 80.5, 300.25, 55.0, 99.0]
    sizes = [40, 30, 90, 25, 33]
    ratio = sum(bits) / sum(sizes)
    residuals = [b - ratio * s for b, s in zip(bits, sizes, strict=True)]
    expected = math.sqrt(variance(residuals) / len(bits)) / fmean(sizes)
    assert ratio_stderr(bits, sizes) == pytest.approx(expected, rel=1e-12)
    assert ratio_stderr([1.0], [3]) is None
