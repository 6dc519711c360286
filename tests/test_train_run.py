"""langadapt-train end to end: real QLoRA on SmolLM2 on the CPU, lm_eval with ``peft=``,
sweeps, and kill-and-resume. Each run is a few optimizer steps on short sequences."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, task_manager
from in_process import run_here
from test_train_data import schema_fixtures

pytestmark = pytest.mark.slow

TRAIN = [sys.executable, "-m", "langadapt_train"]
SYSTEM = "你是一个乐于助人的助手。"


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out.update(
        {
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TQDM_DISABLE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    out.update(extra)
    return out


# A tiny run: short sequences, batches of 2, high learning rate, no warm-up, every step logged.
TINY = [
    "--max-length",
    "64",
    "--per-device-train-batch-size",
    "2",
    "--gradient-accumulation-steps",
    "1",
    "--learning-rate",
    "1e-3",
    "--warmup-ratio",
    "0",
    "--logging-steps",
    "1",
    "--no-gradient-checkpointing",
]


def small(model: Path, output: Path, *extra: str) -> list[str]:
    """langadapt-train's command for a tiny run (the earlier --model / --output flags)."""
    model_output = ["--model", str(model), "--output", str(output)]
    return [*TRAIN, *model_output, *TINY, "--system-prompt", SYSTEM, *extra]


@pytest.fixture(scope="module")
def sft_adapter(
    smollm2_dir: Path,
    sft_dir: Path,
    cmmlu_dir: Path,
    mt_bench_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """QLoRA (the default method) on the shared Chinese Alpaca rows, two steps: SmolLM2 in
    4-bit through bitsandbytes, the command line run in this process."""
    out = tmp_path_factory.mktemp("sft") / "adapter"
    proc = run_here(
        small(
            smollm2_dir,
            out,
            "--data",
            str(sft_dir / "alpaca_zh_demo.json"),
            "--preset",
            "r16-a48",
            "--learning-rate",
            "2e-3",
            "--max-rows",
            "40",
            "--heldout",
            "4",
            "--max-steps",
            "2",
            "--save-steps",
            "1",
            "--max-length",
            "128",
            "--cmmlu-dir",
            str(cmmlu_dir),
            "--mt-bench-dir",
            str(mt_bench_dir),
        ),
        env=env(),
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out.resolve())
    return out


def test_qlora_run_writes_a_complete_adapter_dir(sft_adapter: Path) -> None:
    from langadapt_train.config import load

    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
        "langadapt_train.yaml",
        "data_manifest.json",
        "decontamination.jsonl",
        "heldout.jsonl",
        "loss.csv",
        "loss.jsonl",
        "training_complete.json",
    ):
        assert (sft_adapter / name).is_file(), name
    assert (sft_adapter / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    adapter = json.loads((sft_adapter / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (16, 48)
    assert sorted(adapter["target_modules"]) == ["k_proj", "q_proj", "v_proj"]
    cfg = load(sft_adapter / "langadapt_train.yaml")
    assert (cfg.script.method, cfg.script.preset) == ("qlora", "r16-a48")
    assert cfg.sft["learning_rate"] == 2e-3
    # Saved under TRL's key names, though the run was started with the older flags.
    saved = yaml.safe_load((sft_adapter / "langadapt_train.yaml").read_text())
    assert "model_name_or_path" in saved and "model" not in saved
    manifest = json.loads((sft_adapter / "data_manifest.json").read_text())
    source = manifest["sources"][0]
    assert source["rows"] == 1000 and source["schema"] == "alpaca" and len(source["sha256"]) == 64
    assert source["duplicates"] >= 1  # the shared file has exact duplicates
    assert manifest["split"] == {"train": 36, "heldout": 4, "heldout_copies_left_out": 0}
    assert manifest["decontamination"]["eval_items"]["cmmlu"] > 11_000
    assert manifest["template"]["name"] == "tokenizer"
    assert manifest["tokenized"]["rows"] + sum(manifest["tokenized"]["skipped"].values()) == 36
    assert len((sft_adapter / "heldout.jsonl").read_text().splitlines()) == 4
    losses = [json.loads(line) for line in (sft_adapter / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses] == [1, 2] and all(r["loss"] > 0 for r in losses)
    assert (sft_adapter / "loss.csv").read_text().splitlines()[0].startswith("step,epoch,loss")
    assert json.loads((sft_adapter / "training_complete.json").read_text())["global_step"] == 2


def test_saved_tokenizer_reproduces_training_tokens(sft_adapter: Path) -> None:
    """Round trip: the adapter's tokenizer renders a training conversation to the same ids."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(sft_adapter)
    preview = [
        json.loads(x) for x in (sft_adapter / "train_preview.jsonl").read_text().splitlines()
    ]
    assert preview
    for item in preview:
        assert item["messages"][0] == {"role": "system", "content": SYSTEM}
        ids = tok.apply_chat_template(item["messages"], tokenize=True, return_dict=True)
        ids = list(ids["input_ids"])
        assert ids[: len(item["input_ids"])] == item["input_ids"]
        assert len(ids) == len(item["input_ids"]) or item["truncated"]


def _lm_eval(model_args: str, cmmlu_dir: Path) -> list[dict]:
    """lm-eval's Python API, as ``lm_eval --model hf --model_args ARGS`` runs it."""
    import lm_eval

    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=model_args,
        tasks=["cmmlu_langadapt_agronomy"],
        limit=2,
        num_fewshot=0,
        apply_chat_template=True,
        batch_size=1,
        device="cpu",
        log_samples=True,
        task_manager=task_manager(model_args, cmmlu_dir=str(cmmlu_dir)),
    )
    return sorted(out["samples"]["cmmlu_langadapt_agronomy"], key=lambda s: s["doc_id"])


def test_lm_eval_loads_the_adapter_and_it_changes_loglikelihoods(
    sft_adapter: Path, smollm2_dir: Path, cmmlu_dir: Path
) -> None:
    base = _lm_eval(f"pretrained={smollm2_dir},tokenizer={sft_adapter}", cmmlu_dir)
    tuned = _lm_eval(
        f"pretrained={smollm2_dir},peft={sft_adapter},tokenizer={sft_adapter}", cmmlu_dir
    )
    assert len(base) == len(tuned) == 2

    def lls(samples: list[dict]) -> list[float]:
        return [float(r[0][0]) for s in samples for r in s["resps"]]

    assert len(lls(base)) == 8
    assert max(abs(a - b) for a, b in zip(lls(base), lls(tuned), strict=True)) > 1e-3
    # The prompt was rendered by the adapter's chat template (SmolLM2's ChatML).
    context = tuned[0]["arguments"][0][0]  # (context, continuation) of the first choice
    assert context.startswith("<|im_start|>") and context.endswith("<|im_start|>assistant\n")


def test_sweep_on_fixture_files_in_every_schema(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """The sweep's command line, run in this process, on the tiny random Llama."""
    files = schema_fixtures(tmp_path / "data")
    spec = tmp_path / "fixture-mix.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "fixture-mix",
                "language": "tr",
                "seed": 1,
                "heldout": 0,
                "system_prompt": "Sen yardımsever bir asistansın.",
                "sources": [{"path": str(p)} for p in files.values()],
            },
            allow_unicode=True,
        ),
        "utf-8",
    )
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": str(tiny_llama_dir),
                "output_dir": str(tmp_path / "grid"),
                "data": str(spec),
                "max_steps": 1,
                "max_length": 64,
                "per_device_train_batch_size": 2,
                "gradient_accumulation_steps": 1,
                "gradient_checkpointing": True,
                "decontaminate": False,
                "packing": True,
                "logging_steps": 1,
                "learning_rate": 5e-4,  # an explicit value beats the presets' 1.6e-5
                "method": "lora",  # QLoRA runs in sft_adapter; presets and schemas here
            }
        )
    )
    proc = run_here(
        [*TRAIN, "sweep", "--config", str(cfg), "--presets", "r8-a32,r16-a32"], env=env(), cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for preset, r in (("r8-a32", 8), ("r16-a32", 16)):
        out = tmp_path / "grid" / preset
        adapter = json.loads((out / "adapter_config.json").read_text())
        assert (adapter["r"], adapter["lora_alpha"]) == (r, 32)
        saved = yaml.safe_load((out / "langadapt_train.yaml").read_text())
        assert (saved["preset"], saved["learning_rate"]) == (preset, 5e-4)
        assert f"learning_rate=0.0005 (from {cfg}) replaces preset {preset}'s 1.6e-05" in (
            proc.stderr
        )
        manifest = json.loads((out / "data_manifest.json").read_text())
        assert {s["schema"] for s in manifest["sources"]} == {
            "firefly",
            "aya",
            "messages",
            "sharegpt",
            "alpaca",
            "turkish-alpaca",
        }
        assert sum(s["selected"] for s in manifest["sources"]) == 11
        assert json.loads((out / "training_complete.json").read_text())["global_step"] == 1
    started = time.time()
    again = run_here(
        [*TRAIN, "sweep", "--config", str(cfg), "--presets", "r8-a32,r16-a32"], env=env(), cwd=REPO
    )
    assert again.returncode == 0 and again.stdout.count("skipping") == 2
    assert time.time() - started < 60


STEPS = 12  # the kill-and-resume runs: 24 rows, batches of 2


def tiny_run(model: Path, sft_dir: Path, out: Path, steps: int, *extra: str) -> list[str]:
    """A tiny run of ``steps`` steps over 24 rows of the shared Chinese Alpaca set."""
    data = ["--data", str(sft_dir / "alpaca_zh_demo.json"), "--max-rows", "24"]
    rest = ["--heldout", "0", "--max-steps", str(steps), "--no-decontaminate"]
    return small(model, out, *data, *rest, *extra)


def _losses(out: Path) -> list[tuple[int, float]]:
    return [
        (r["step"], r["loss"])
        for r in (json.loads(x) for x in (out / "loss.jsonl").read_text().splitlines())
    ]


def test_kill_and_resume_matches_an_uninterrupted_run(
    tiny_llama_dir: Path, sft_dir: Path, tmp_path: Path
) -> None:
    """Real processes (one is killed), on the tiny random Llama: a step takes
    milliseconds, so the run has enough steps to be killed in the middle."""

    def args(out: Path, *extra: str) -> list[str]:
        return tiny_run(
            tiny_llama_dir,
            sft_dir,
            out,
            STEPS,
            "--save-steps",
            "1",
            "--lora-dropout",
            "0.1",
            "--method",
            "lora",  # resuming is the same for every method; QLoRA runs in sft_adapter
            *extra,
        )

    # One thread everywhere, so that every run computes in the same order and the runs
    # match to the last bit: the run to kill in a process of its own, the others here.
    one = env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    with (tmp_path / "killed.log").open("w") as log:
        child = subprocess.Popen(args(killed), env=one, cwd=REPO, stdout=log, stderr=log)
        deadline = time.time() + 600
        while not (killed / "checkpoints" / "checkpoint-1" / "trainer_state.json").exists():
            assert child.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.time() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (killed / "training_complete.json").exists()

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        uninterrupted = run_here(args(whole), env=one, cwd=REPO)
        assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
        # A resume with other settings is refused, naming them, and changes nothing.
        saved = (killed / "langadapt_train.yaml").read_text()
        refused = run_here(args(killed, "--resume", "--seed", "7"), env=one, cwd=REPO)
        assert refused.returncode == 2 and "seed: 42 -> 7" in refused.stderr
        assert (killed / "langadapt_train.yaml").read_text() == saved
        resumed = run_here(args(killed, "--resume"), env=one, cwd=REPO)
    finally:
        torch.set_num_threads(threads)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    done = json.loads((killed / "training_complete.json").read_text())
    resumed_at = int(done["resumed_from"].removeprefix("checkpoint-"))
    assert done["global_step"] == STEPS and 1 <= resumed_at < STEPS
    a, b = _losses(whole), _losses(killed)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, STEPS + 1))
    assert len((killed / "loss.csv").read_text().splitlines()) == 1 + STEPS  # no repeats
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=1e-6)

    from safetensors.torch import load_file

    wa = load_file(whole / "adapter_model.safetensors")
    wb = load_file(killed / "adapter_model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        a_, b_ = wa[key].float(), wb[key].float()
        assert (a_ - b_).abs().max().item() <= 1e-5, key


def test_padding_free_batches_train_exactly_as_padded_ones(
    tiny_llama_dir: Path, sft_dir: Path, tmp_path: Path
) -> None:
    """TRL's padding_free (each batch flattened into one sequence, no padding) through
    langadapt-train, whose rows are already truncated to max_length: the same loss and
    gradient norm at every step as batches padded to their longest row (transformers keeps
    the flattened rows apart by their position_ids)."""
    import torch

    runs = {}
    for free in ("false", "true"):
        out = tmp_path / f"padding-free-{free}"
        args = ["--method", "lora", "--lora-dropout", "0", "--per-device-train-batch-size", "4"]
        args += ["--max-length", "512", "--padding_free", free]
        proc = run_here(
            tiny_run(tiny_llama_dir, sft_dir, out, 4, *args),
            env=env(),
            cwd=REPO,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        sft = torch.load(out / "training_args.bin", weights_only=False)
        assert sft.padding_free == (free == "true")
        # TRL truncates no further (it refuses max_length with padding_free and no packing);
        # the rows were truncated to langadapt's max_length when they were tokenized.
        assert sft.max_length == (None if free == "true" else 512)
        rows = json.loads((out / "data_manifest.json").read_text())["tokenized"]
        assert rows["truncated"] < rows["rows"]  # rows of their own lengths: padded batches pad
        runs[free] = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    padded, free_ = runs["false"], runs["true"]
    assert [r["step"] for r in padded] == [r["step"] for r in free_] == [1, 2, 3, 4]
    for a, b in zip(padded, free_, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def test_tokenized_rows_and_trls_preparation_stay_on_disk(
    tiny_llama_dir: Path, sft_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows are trained from a memory-mapped Arrow file (ids int32, masks int8) in a
    temporary folder of datasets' cache folder; TRL's own preparation (labels, truncation)
    writes its cache files into that folder rather than into memory; the folder is gone
    once the run ends. The manifest's train_sha256 is the digest of the rows as JSON, as
    earlier releases computed it from their lists, so their runs can still be resumed."""
    import hashlib

    import datasets
    from transformers import Trainer

    cache = tmp_path / "hf-datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    seen: dict[str, object] = {}
    original = Trainer.train

    def train(self, *args, **kwargs):  # looks at what the trainer trains from, then trains
        folder = next(cache.glob("langadapt-train-*"))
        rows = datasets.Dataset.from_file(str(folder / "train.arrow"))
        digest = hashlib.sha256()
        for row in rows:
            digest.update(json.dumps(row, separators=(",", ":")).encode())
        seen.update(folder=folder, rows=rows.num_rows, features=dict(rows.features))
        seen["sha256"] = digest.hexdigest()
        seen["files"] = [Path(f["filename"]) for f in self.train_dataset.cache_files]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train", train)
    out = tmp_path / "run"
    proc = run_here(tiny_run(tiny_llama_dir, sft_dir, out, 1), env=env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]

    assert seen["features"] == {
        "input_ids": datasets.List(datasets.Value("int32")),
        "assistant_masks": datasets.List(datasets.Value("int8")),
    }
    assert seen["files"] and all(f.parent == seen["folder"] for f in seen["files"])
    assert Path(seen["folder"] / "train.arrow") not in seen["files"]  # TRL's maps ran on it
    assert not any(cache.iterdir())

    manifest = json.loads((out / "data_manifest.json").read_text())
    assert manifest["train_sha256"] == seen["sha256"]
    assert manifest["tokenized"]["rows"] == seen["rows"] > 0


def test_both_qlora_preparations_give_the_same_loss_curve(
    tiny_llama_dir: Path, sft_dir: Path, tmp_path: Path
) -> None:
    """QLoRA computing in bf16 on the CPU, as on a GPU: by default the weights that are not
    quantized stay in bf16 (as `trl sft` keeps them), with upcast_non_quantized in fp32 (PEFT's
    prepare_model_for_kbit_training). The same run through both: the loss at every step
    within 1 % (the stated tolerance, docs/training.md), and both adapters trained."""
    from safetensors.torch import load_file

    curves = {}
    for upcast, dtype in (("false", "bfloat16"), ("true", "float32")):
        out = tmp_path / f"upcast-{upcast}"
        proc = run_here(
            tiny_run(
                tiny_llama_dir,
                sft_dir,
                out,
                8,
                "--learning-rate",
                "1e-2",
                "--precision",
                "bf16",
                "--upcast_non_quantized",
                upcast,
            ),
            env=env(),
            cwd=REPO,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        said = f"weights not quantized are in {dtype} (upcast_non_quantized: {upcast.title()})"
        assert said in proc.stderr
        curves[upcast] = _losses(out)
        weights = load_file(out / "adapter_model.safetensors")
        lora_b = [w for k, w in weights.items() if "lora_B" in k]
        assert lora_b and all(w.abs().max() > 0 for w in lora_b)  # B starts at zero
    ours, upcast_ = curves["false"], curves["true"]
    assert [s for s, _ in ours] == [s for s, _ in upcast_] == list(range(1, 9))
    for (_, a), (_, b) in zip(ours, upcast_, strict=True):
        assert a == pytest.approx(b, rel=0.01)
