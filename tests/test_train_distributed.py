"""langadapt-train under ``accelerate launch``: two processes on the CPU (gloo) with the shipped
DDP config, and the FSDP-QLoRA settings (config file, 4-bit storage dtype) without a GPU."""

from __future__ import annotations

import json
import math
import socket
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_cli
from test_train_run import TINY, env

ACCELERATE = REPO / "configs" / "accelerate"
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch"]
PROCESSES = 2
BATCH = int(TINY[TINY.index("--per-device-train-batch-size") + 1])  # rows per process, step


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch_env(config: str) -> dict[str, str]:
    """What ``accelerate launch --config_file <config>`` gives each process."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    argv = ["--config_file", str(ACCELERATE / config), "--num_processes", "2", "-m", "x"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    return prepare_multi_gpu_env(args)


@pytest.mark.slow
@pytest.mark.e2e
def test_two_cpu_processes_train_one_adapter(
    tiny_llama_dir: Path, sft_dir: Path, cmmlu_dir: Path, mt_bench_dir: Path, tmp_path: Path
) -> None:
    """DDP on two CPU processes (the tiny random Llama): one run, its files written once, one
    log entry per step."""
    out = tmp_path / "adapter"
    proc = run_cli(
        [
            *LAUNCH,
            "--config_file",
            str(ACCELERATE / "ddp.yaml"),
            "--num_processes",
            str(PROCESSES),
            "--main_process_port",
            str(_free_port()),
            "-m",
            "langadapt_train",
            "--model_name_or_path",
            str(tiny_llama_dir),
            "--output_dir",
            str(out),
            "--method",
            "lora",
            "--data",
            str(sft_dir / "alpaca_zh_demo.json"),
            "--max-rows",
            "20",
            "--heldout",
            "2",
            *TINY,
            "--save-steps",
            "2",
            "--cmmlu-dir",
            str(cmmlu_dir),
            "--mt-bench-dir",
            str(mt_bench_dir),
        ],
        # No GPU: the processes train on the CPU over gloo (langadapt-train sets use_cpu).
        env=env(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1"),
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Each process ran the command: the log says so once (main process only).
    assert proc.stderr.count(f"{PROCESSES} process(es)") == 1, proc.stderr[-3000:]

    manifest = json.loads((out / "data_manifest.json").read_text("utf-8"))
    rows = manifest["tokenized"]["rows"]
    assert rows >= 8
    # One epoch: the rows are split across the processes, BATCH rows per process and step.
    steps = math.ceil(rows / (BATCH * PROCESSES))
    assert steps != math.ceil(rows / BATCH)  # one process would take more steps

    losses = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses] == list(range(1, steps + 1))
    assert all(r["loss"] > 0 for r in losses)
    assert len((out / "loss.csv").read_text().splitlines()) == steps + 1  # header + steps
    done = json.loads((out / "training_complete.json").read_text())
    assert (done["global_step"], done["processes"]) == (steps, PROCESSES)

    # One adapter, written whole, in the output folder only.
    adapters = sorted(p.parent for p in out.rglob("adapter_config.json"))
    checkpoints = sorted((out / "checkpoints").glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == [f"checkpoint-{s}" for s in range(2, steps + 1, 2)]
    assert adapters == sorted([out, *checkpoints])
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (16, 48)
    from safetensors.torch import load_file

    weights = load_file(out / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())
    # Each process saved its own RNG state into the checkpoint, nothing else twice.
    assert sorted(p.name for p in checkpoints[0].glob("rng_state*")) == [
        f"rng_state_{i}.pth" for i in range(PROCESSES)
    ]

    # Records written once: as many lines as the manifest counts.
    heldout = (out / "heldout.jsonl").read_text("utf-8").splitlines()
    assert len(heldout) == manifest["split"]["heldout"] == 2
    dropped = (out / "decontamination.jsonl").read_text("utf-8").splitlines()
    assert len(dropped) == manifest["decontamination"]["dropped"]
    assert len((out / "train_preview.jsonl").read_text("utf-8").splitlines()) == 3


def test_shipped_accelerate_configs_load_with_accelerates_loader() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    ddp = load_config_from_file(str(ACCELERATE / "ddp.yaml"))
    assert ddp.distributed_type.value == "MULTI_GPU" and ddp.mixed_precision == "no"
    fsdp = load_config_from_file(str(ACCELERATE / "fsdp_qlora.yaml"))
    assert fsdp.distributed_type.value == "FSDP"
    # What accelerate launch hands the processes (PEFT's FSDP-QLoRA settings).
    expected = {
        "ACCELERATE_USE_FSDP": "true",
        "FSDP_SHARDING_STRATEGY": "FULL_SHARD",
        "FSDP_USE_ORIG_PARAMS": "false",
        "FSDP_CPU_RAM_EFFICIENT_LOADING": "true",
        "FSDP_SYNC_MODULE_STATES": "true",
        "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
        # transformers refuses FSDP activation checkpointing together with the trainer's
        # gradient checkpointing (langadapt-train's `gradient_checkpointing`).
        "FSDP_ACTIVATION_CHECKPOINTING": "false",
    }
    launched = _launch_env("fsdp_qlora.yaml")
    assert {key: launched.get(key) for key in expected} == expected
    assert "ACCELERATE_USE_FSDP" not in _launch_env("ddp.yaml")


@pytest.mark.parametrize(
    ("precision", "storage"),
    [("bf16", torch.bfloat16), ("fp32", torch.float32), ("fp16", torch.float32)],
)
def test_qlora_under_fsdp_stores_4bit_weights_in_a_float_dtype(
    precision: str, storage: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FSDP shards float tensors only: the packed 4-bit weights are stored in the compute
    dtype (fp32 for fp16 compute, as PEFT's FSDP-QLoRA guide advises)."""
    from langadapt_train import trainer
    from langadapt_train.config import build

    cfg = build({"model_name_or_path": "m", "output_dir": "o", "precision": precision})
    for key, value in _launch_env("fsdp_qlora.yaml").items():
        if key.startswith(("ACCELERATE_USE_FSDP", "FSDP_")):
            monkeypatch.setenv(key, value)
    assert trainer.under_fsdp()
    bnb = trainer.quantization_config(cfg, trainer.under_fsdp())
    compute = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[precision]
    assert (bnb.bnb_4bit_compute_dtype, bnb.bnb_4bit_quant_storage) == (compute, storage)
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant
    if precision == "bf16":
        assert bnb.bnb_4bit_quant_storage == bnb.bnb_4bit_compute_dtype

    # Outside FSDP bitsandbytes' own uint8 stays; an explicit value is used everywhere.
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    assert not trainer.under_fsdp()
    assert trainer.quantization_config(cfg, False).bnb_4bit_quant_storage == torch.uint8
    explicit = build(
        {"model_name_or_path": "m", "output_dir": "o", "bnb_4bit_quant_storage": "bf16"}
    )
    assert trainer.quantization_config(explicit, False).bnb_4bit_quant_storage == torch.bfloat16


def test_quant_storage_is_checked() -> None:
    from langadapt_train.config import ConfigError, build

    with pytest.raises(ConfigError, match="'bnb_4bit_quant_storage': must be one of"):
        build({"model_name_or_path": "m", "output_dir": "o", "bnb_4bit_quant_storage": "int4"})
    with pytest.raises(ConfigError, match="applies to method qlora only"):
        build(
            {
                "model_name_or_path": "m",
                "output_dir": "o",
                "method": "lora",
                "bnb_4bit_quant_storage": "bf16",
            }
        )
