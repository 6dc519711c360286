"""langadapt-train vs TRL's own ``trl sft`` CLI: QLoRA r16-a48, same model, data and settings.

    python bench/train_vs_trl.py --device cpu --model DIR --out DIR     # anyone, a few minutes
    python bench/train_vs_trl.py --data FILE --tokenizer DIR --out DIR  # a GPU, Llama-3-8B shape

One process orchestrates, and touches no accelerator itself:

1. the model: ``--model`` (e.g. SmolLM2 from ``langadapt models smollm2``), or a random-weight
   model of Meta-Llama-3-8B's shape (bf16) built and saved with the tokenizer of
   ``--tokenizer`` (speed and memory depend on the shape, not on the weights);
2. ``--rows`` rows of ``--data`` (any file or mix langadapt reads; without it, generated rows
   that write numbers out in Chinese numerals) are written once as a ``messages`` JSONL file.
   langadapt-train reads that file; ``trl sft`` reads the same rows in the order
   langadapt-train trains on them, so both trainers (same seed) see the same batches;
3. ``python -m langadapt_train`` and ``trl sft`` (TRL's console entry point, which starts the
   training script through ``accelerate launch``) run one after the other with the same
   settings, each in its own process, then (GPU only) both again with Liger kernels (TRL's
   ``use_liger_kernel`` key; the headline pair on a GPU comes first, in case ``--deadline``
   cuts the rest), then langadapt-train with ``upcast_non_quantized`` (the preparation of its
   earlier releases, for its loss curve), then langadapt-train once per ``--options``
   setting (``padding_free``, ``activation_offloading``: TRL's keys);
4. a ``sitecustomize`` hook, on the path of every run and of no other process, wraps
   ``transformers.Trainer.train`` in the training process of both tools alike: tokens are the
   trainer's logged ``num_tokens`` (non-padding tokens), time is the wall time of ``train()``
   (model loading and data preparation excluded) and after the first optimizer step (steady
   state), peak memory is ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` of that
   process, or on the CPU its peak resident memory (whole process, and within ``train()``,
   with glibc's ``MALLOC_MMAP_THRESHOLD_`` fixed for every run so that RSS follows the memory
   in use rather than what the heap happens to keep); the loss of every step is kept.
   ``nvidia-smi``'s peak of the whole GPU above idle is recorded as well;
5. a table with the ratios langadapt-train / TRL and the loss curves is printed and written to
   ``--out`` (``results.json``, ``results.md``, one log per run); ``results.json``'s
   ``ratios`` holds the headline, langadapt-train / ``trl sft`` with the defaults of each:
   ``{"tokens_per_s": ..., "peak_memory": ...}``. A failed run is reported with the tail of its
   log and the others go on.

Settings both tools get: nf4 4-bit base with double quantization, LoRA r16 alpha 48 dropout
0.05 on q_proj,k_proj,v_proj, learning rate 1.6e-5, cosine schedule with 3% warm-up, adamw_torch,
bf16 compute (on the CPU too: in fp32 both would keep every weight in fp32 and hide the
preparations' dtypes), gradient checkpointing (non-reentrant), loss on all tokens, the same
max_length, batch size, gradient accumulation, packing and max_steps, logging every step, no
mid-run checkpoint. What differs is each tool's own handling of the model, which is what is
compared (docs/training.md, "Where langadapt-train differs from trl sft").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Meta-Llama-3-8B's architecture (config.json of the release).
LLAMA3_8B = {
    "hidden": 4096,
    "intermediate": 14336,
    "layers": 32,
    "heads": 32,
    "kv_heads": 8,
    "vocab": 128256,
}
TARGETS = ["q_proj", "k_proj", "v_proj"]
LORA_R, LORA_ALPHA, LORA_DROPOUT, LR = 16, 48, 0.05, 1.6e-5  # preset r16-a48
RUNS = (  # (name, tool, liger, langadapt-train's own flags)
    ("langadapt-train", "ours", False, ()),
    ("trl sft", "trl", False, ()),
    ("langadapt-train + Liger", "ours", True, ()),  # langadapt-train's default on a GPU
    ("trl sft + Liger", "trl", True, ()),
    # the preparation of langadapt's earlier releases, for its loss curve
    ("langadapt-train, upcast_non_quantized", "ours", False, ("--upcast_non_quantized", "true")),
)
# --options: one more langadapt-train run each, with its defaults on this device plus the key.
OPTIONS = {
    "padding_free": ("--padding_free", "true"),
    "activation_offloading": ("--activation_offloading", "true"),
}
# --device cpu: SmolLM2-sized runs in bf16 take seconds per step on two cores.
CPU_DEFAULTS = {"rows": 24, "steps": 4, "batch_size": 2, "grad_accum": 1, "max_length": 64}
GPU_DEFAULTS = {"rows": 256, "steps": 10, "batch_size": 4, "grad_accum": 4, "max_length": 1024}
MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's initial value, kept fixed (--device cpu)
LOG_TAIL = 60  # lines of a failed run's log that are printed

# Written as sitecustomize.py into a folder that only the runs have on PYTHONPATH. It acts in
# the process that calls Trainer.train (for trl sft: the process accelerate launch starts).
HOOK = r'''
import importlib.abc, importlib.util, json, os, sys, time

_OUT = os.environ.get("TVT_HOOK_OUT")


def _cuda():
    torch = sys.modules.get("torch")
    return torch if torch is not None and torch.cuda.is_available() else None


def _reset_peak_rss():
    # Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS.
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _status_mib(field):
    """``VmHWM`` (peak RSS since the reset) or ``VmRSS`` of this process, in MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _patch_trainer(module):
    from transformers import TrainerCallback

    budget = os.environ.get("TVT_MEMORY_BUDGET_GIB")
    if budget and _cuda():  # before the model is loaded: a smaller GPU, emulated
        total = _cuda().cuda.get_device_properties(0).total_memory
        _cuda().cuda.set_per_process_memory_fraction(min(1.0, float(budget) * 2**30 / total))

    class Clock(TrainerCallback):
        """(time, tokens logged so far) at each optimizer step's end."""

        def __init__(self):
            self.marks, self.tokens = [], 0

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                self.tokens = int(float(logs["num_tokens"]))

        def on_step_end(self, args, state, control, **kw):
            if _cuda():
                _cuda().cuda.synchronize()
            self.marks.append((time.perf_counter(), self.tokens))

    original = module.Trainer.train

    def train(self, *args, **kwargs):
        clock = Clock()
        self.add_callback(clock)
        torch = _cuda()
        if torch:
            torch.cuda.synchronize()
        peak_before = _status_mib("VmHWM")  # loading; the reset clears ru_maxrss too
        _reset_peak_rss()
        rss_before = _status_mib("VmRSS")
        start = time.perf_counter()
        result = original(self, *args, **kwargs)
        if torch:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        tokens = max([int(float(e["num_tokens"])) for e in self.state.log_history
                      if "num_tokens" in e] or [0])
        steady = None
        # num_tokens is logged after on_step_end: mark k holds the tokens of steps before k.
        if len(clock.marks) >= 3:
            (t1, _), (tn, _) = clock.marks[0], clock.marks[-1]
            if tn > t1:
                steady = (tokens - clock.marks[1][1]) / (tn - t1)
        params = list(self.model.parameters())
        trainable = [p for p in params if p.requires_grad]
        record = {
            "tokens": tokens,
            "train_seconds": seconds,
            "tokens_per_s": tokens / seconds if seconds else None,
            "steady_tokens_per_s": steady,
            "steps": self.state.global_step,
            "train_loss": getattr(result, "training_loss", None),
            "train_runtime": (getattr(result, "metrics", None) or {}).get("train_runtime"),
            "peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20 if torch else None,
            "peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20 if torch else None,
            "peak_rss_mib": max(peak_before or 0, _status_mib("VmHWM") or 0) or None,
            "peak_rss_train_mib": _status_mib("VmHWM"),
            "rss_before_train_mib": rss_before,
            "losses": [[e["step"], e["loss"]] for e in self.state.log_history if "loss" in e],
            "trainable_params": sum(p.numel() for p in trainable),
            "non_quantized_dtypes": sorted({str(p.dtype) for p in params
                                            if not p.requires_grad and p.is_floating_point()}),
            "adapter_dtypes": sorted({str(p.dtype) for p in trainable}),
            "use_liger_kernel": bool(getattr(self.args, "use_liger_kernel", False)),
            "device": torch.cuda.get_device_name() if torch else "cpu",
        }
        with open(_OUT, "w") as fh:
            json.dump(record, fh)
        return result

    module.Trainer.train = train


def _patch_losslog(module):
    # The loss plot needs matplotlib, which a bare GPU machine may lack; it comes after the
    # timed part, so it is skipped there rather than failing the run.
    if importlib.util.find_spec("matplotlib") is None:
        module.plot = lambda directory, title: print("loss.png skipped: no matplotlib")


_HOOKS = {"transformers.trainer": _patch_trainer, "langadapt_train.losslog": _patch_losslog}


class _Finder(importlib.abc.MetaPathFinder):
    """Runs a patch right after one of the modules above is imported."""

    def find_spec(self, name, path, target=None):
        if name not in _HOOKS:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        loader_exec = spec.loader.exec_module

        def exec_module(module):
            loader_exec(module)
            _HOOKS[name](module)

        spec.loader.exec_module = exec_module
        return spec


if _OUT:
    sys.meta_path.insert(0, _Finder())
'''


# --- model and data ------------------------------------------------------------------------


def build_model(args: argparse.Namespace, out: Path) -> None:
    """Child mode: save a random-weight Llama model of the chosen shape and the tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    if len(tokenizer) > args.vocab:
        raise SystemExit(f"--tokenizer has {len(tokenizer)} tokens; the model has {args.vocab}")
    config = LlamaConfig(
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        vocab_size=args.vocab,
        max_position_embeddings=8192,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    started = time.time()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda" if args.device == "cuda" else "cpu"):
        model = LlamaForCausalLM(config)
    built = time.time()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {params / 1e9:.3f}B parameters, random weights, bf16; built in "
        f"{built - started:.0f}s, saved in {time.time() - built:.0f}s",
        flush=True,
    )


DIGITS = "零一二三四五六七八九"


def generated_rows(count: int) -> list[list[dict[str, str]]]:
    """Chat rows without a data file: write a number in Chinese numerals (learnable, with
    varied lengths; speed and memory depend on the lengths, not on the content)."""
    import random

    rng = random.Random(0)
    rows = []
    for _ in range(count):
        number = str(rng.randrange(10 ** rng.randrange(3, 40)))
        rows.append(
            [
                {"role": "user", "content": f"请用汉字逐位写出这个数字：{number}"},
                {"role": "assistant", "content": "".join(DIGITS[int(d)] for d in number) + "。"},
            ]
        )
    return rows


def prepare_data(args: argparse.Namespace, work: Path) -> tuple[Path, Path, int]:
    """(rows file for langadapt-train, dataset folder for trl sft, row count)."""
    from langadapt_train.data import mix

    def train_rows(data: str, max_rows: int | None) -> list:
        built = mix.build(mix.resolve(data), None, system_prompt=None, max_rows=max_rows, heldout=0)
        return built.train

    rows_file = work / "rows.jsonl"
    source = train_rows(args.data, args.rows) if args.data else generated_rows(args.rows)
    with rows_file.open("w", encoding="utf-8") as fh:
        for messages in source:
            fh.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    # langadapt-train shuffles its data file (seed 42); TRL gets the rows in that order.
    ordered = train_rows(str(rows_file), None)
    trl_dir = work / "trl-data"
    trl_dir.mkdir()
    with (trl_dir / "train.jsonl").open("w", encoding="utf-8") as fh:
        for messages in ordered:
            fh.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return rows_file, trl_dir, len(ordered)


# --- the two tools -------------------------------------------------------------------------


def ours_command(
    args: argparse.Namespace,
    model: Path,
    rows: Path,
    output: Path,
    liger: bool,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """``python -m langadapt_train`` with the same settings as ``trl_command`` (TRL's key names);
    its own settings (``upcast_non_quantized``, ...) at their defaults unless ``extra`` sets
    them."""
    return [
        sys.executable,
        "-m",
        "langadapt_train",
        "--model_name_or_path",
        str(model),
        "--output_dir",
        str(output),
        "--data",
        str(rows),
        "--method",
        "qlora",
        "--preset",
        "r16-a48",  # lora_r 16, lora_alpha 48, learning_rate 1.6e-5
        "--lora_dropout",
        str(LORA_DROPOUT),
        "--lora_target_modules",
        *TARGETS,
        "--max_steps",
        str(args.steps),
        "--per_device_train_batch_size",
        str(args.batch_size),
        "--gradient_accumulation_steps",
        str(args.grad_accum),
        "--max_length",
        str(args.max_length),
        "--packing" if args.packing else "--no_packing",
        "--no_assistant_only_loss",
        "--gradient_checkpointing",
        "--precision",
        "bf16",  # on the CPU too: fp32 there would hide the preparations' dtypes
        "--warmup_steps",
        "0.03",  # below 1: a fraction of the steps
        "--lr_scheduler_type",
        "cosine",
        "--optim",
        "adamw_torch",
        "--seed",
        "42",
        "--heldout",
        "0",
        "--no_decontaminate",
        "--save_steps",
        "100000",
        "--logging_steps",
        "1",
        # report_to: langadapt-train's default is already none (no tracker integration)
        "--use_liger_kernel",
        "true" if liger else "false",
        *extra,
    ]


def trl_command(
    args: argparse.Namespace, model: Path, data_dir: Path, output: Path, liger: bool
) -> list[str]:
    """``trl sft --config YAML``, through TRL's console entry point (trl.cli:main)."""
    import yaml

    cuda = args.device == "cuda"
    config = {
        "model_name_or_path": str(model),
        "dtype": "bfloat16",
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "use_bnb_nested_quant": True,
        "use_peft": True,
        "lora_r": LORA_R,
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": LORA_DROPOUT,
        "lora_target_modules": TARGETS,
        "dataset_name": str(data_dir),
        "output_dir": str(output),
        "learning_rate": LR,
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.grad_accum,
        "max_length": args.max_length,
        "packing": args.packing,
        "packing_strategy": "bfd",
        "assistant_only_loss": False,
        "warmup_steps": 0.03,
        "lr_scheduler_type": "cosine",
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "optim": "adamw_torch",
        "bf16": True,
        "fp16": False,
        "use_cpu": not cuda,  # transformers computes bf16 on the CPU only when told so
        "gradient_checkpointing": True,
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "seed": 42,
        "data_seed": 42,
        "save_strategy": "steps",
        "save_steps": 100000,
        "logging_steps": 1,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "use_liger_kernel": liger,
    }
    path = output.parent / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    entry = "import sys; from trl.cli import main; sys.argv[0] = 'trl'; sys.exit(main())"
    return [sys.executable, "-c", entry, "sft", "--config", str(path)]


# --- running and measuring -----------------------------------------------------------------


class GpuPoll(threading.Thread):
    """Peak ``nvidia-smi`` memory.used of GPU 0 while a run lasts (MiB)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak: int | None = None
        self.stop = threading.Event()

    @staticmethod
    def used() -> int | None:
        if not shutil.which("nvidia-smi"):
            return None
        try:
            out = subprocess.run(
                [
                    "nvidia-smi",
                    "--query-gpu=memory.used",
                    "--format=csv,noheader,nounits",
                    "-i",
                    "0",
                ],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            return int(out.split()[0])
        except (subprocess.SubprocessError, ValueError, IndexError, OSError):
            return None

    def run(self) -> None:
        while not self.stop.is_set():
            used = self.used()
            if used is not None:
                self.peak = max(self.peak or 0, used)
            self.stop.wait(0.5)


def run_one(
    name: str, cmd: list[str], env: dict[str, str], log: Path, hook_out: Path, timeout: float
) -> dict[str, Any]:
    print(f"\n=== {name}\n$ {' '.join(cmd)}", flush=True)
    idle = GpuPoll.used()
    poll = GpuPoll()
    poll.start()
    started = time.time()
    with log.open("w", encoding="utf-8") as fh:
        # A session of its own: on timeout the whole group goes (trl sft's training process
        # is a child of accelerate launch).
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            rc: int | str = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = f"timeout after {timeout:.0f}s"
    poll.stop.set()
    poll.join()
    wall = time.time() - started
    result: dict[str, Any] = {"name": name, "returncode": rc, "wall_seconds": round(wall, 1)}
    if hook_out.is_file():
        result.update(json.loads(hook_out.read_text("utf-8")))
    if poll.peak is not None and idle is not None:
        result["nvidia_smi_peak_mib"] = poll.peak - idle
    ok = rc == 0 and "tokens" in result
    result["ok"] = ok
    if not ok:
        why = "no measurement (train() never finished)" if "tokens" not in result else ""
        lines = log.read_text("utf-8", errors="replace").splitlines()[-LOG_TAIL:]
        print(
            f"!!! {name} FAILED (exit {rc}) {why}; last {len(lines)} lines of {log.name}:\n"
            + "\n".join(lines),
            flush=True,
        )
    else:
        print(
            f"{name}: {result['tokens']} tokens in {result['train_seconds']:.1f}s "
            f"(wall {wall:.0f}s incl. loading)",
            flush=True,
        )
    return result


# --- report --------------------------------------------------------------------------------

COLUMNS = (  # (key, heading, format)
    ("tokens", "tokens", "{:.0f}"),
    ("train_seconds", "train s", "{:.1f}"),
    ("tokens_per_s", "tokens/s", "{:.1f}"),
    ("steady_tokens_per_s", "tokens/s after step 1", "{:.1f}"),
    ("peak_allocated_mib", "peak allocated MiB", "{:.0f}"),
    ("peak_reserved_mib", "peak reserved MiB", "{:.0f}"),
    ("nvidia_smi_peak_mib", "nvidia-smi peak MiB", "{:.0f}"),
    ("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
    ("peak_rss_train_mib", "peak RSS in train() MiB", "{:.0f}"),
    ("rss_before_train_mib", "RSS before train() MiB", "{:.0f}"),
    ("wall_seconds", "wall s (with loading)", "{:.0f}"),
)
RATIOS = (
    ("tokens_per_s", "tokens/s"),
    ("steady_tokens_per_s", "tokens/s after step 1"),
    ("peak_allocated_mib", "peak allocated"),
    ("peak_reserved_mib", "peak reserved"),
    ("nvidia_smi_peak_mib", "nvidia-smi peak"),
    ("peak_rss_mib", "peak RSS"),
    ("peak_rss_train_mib", "peak RSS in train()"),
)


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    out = {}
    pairs = [
        ("langadapt-train", "trl sft", "without Liger"),
        ("langadapt-train + Liger", "trl sft + Liger", "with Liger"),
    ]
    for option in OPTIONS:  # an --options run against trl sft with its defaults
        pairs += [(n, "trl sft", f"{n} / trl sft") for n in results if n.endswith(f", {option}")]
    for ours, trl, label in pairs:
        a, b = results.get(ours, {}), results.get(trl, {})
        if not (a.get("ok") and b.get("ok")):
            continue
        out[label] = {
            heading: (a[key] / b[key] if a.get(key) and b.get(key) else None)
            for key, heading in RATIOS
        }
        out[label]["same tokens"] = a["tokens"] == b["tokens"]
    return out


def headline(results: dict[str, dict[str, Any]], device: str) -> dict[str, float | None]:
    """langadapt-train / ``trl sft``, the defaults of each: steady-state tokens/s (after the
    first optimizer step) and peak memory (reserved on a GPU, resident on the CPU).
    langadapt-train's defaults turn Liger on where it runs (a GPU with liger-kernel), TRL's
    leave it off."""
    ours = "langadapt-train + Liger" if device == "cuda" else "langadapt-train"
    a, b = results.get(ours, {}), results.get("trl sft", {})
    memory = "peak_reserved_mib" if device == "cuda" else "peak_rss_mib"
    out: dict[str, float | None] = {}
    for name, key in (("tokens_per_s", "steady_tokens_per_s"), ("peak_memory", memory)):
        ok = a.get("ok") and b.get("ok") and a.get(key) and b.get(key)
        out[name] = a[key] / b[key] if ok else None
    return out


def curves(results: dict[str, dict[str, Any]]) -> list[str]:
    """The loss at every logged step, one column per run."""
    runs = {n: dict(r["losses"]) for n, r in results.items() if r.get("ok") and r.get("losses")}
    if not runs:
        return []
    steps = sorted({step for losses in runs.values() for step in losses})
    lines = ["| step | " + " | ".join(runs) + " |", "|---:|" + "---:|" * len(runs)]
    for step in steps:
        cells = [fmt(losses.get(step), "{:.4f}") for losses in runs.values()]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return ["", "Loss per step:", "", *lines]


def fmt(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def markdown(meta: dict[str, Any], results: dict, table: dict) -> str:
    cols = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in results.values())]
    lines = [
        f"Model: {meta['shape']}; data: {meta['rows']} rows of {meta['data']}; "
        f"{meta['settings']}; device: {meta['device']}.",
        "",
        "| run | " + " | ".join(h for _, h, _ in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name, r in results.items():
        cells = [
            fmt(r.get(k), f) if r.get("ok") or k == "wall_seconds" else "failed" for k, _, f in cols
        ]
        status = "" if r.get("ok") else f" (failed: exit {r['returncode']})"
        lines.append(f"| {name}{status} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios langadapt-train / trl sft (tokens/s: above 1 is faster; memory: below 1 is less):",
        "",
    ]
    heads = [h for _, h in RATIOS]
    lines += ["| | " + " | ".join(heads) + " | same tokens |", "|---|" + "---:|" * (len(heads) + 1)]
    for label, row in table.items():
        cells = [fmt(row[h], "{:.2f}x") for h in heads]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {row['same tokens']} |")
    if not table:
        lines.append("| (no pair of runs finished) |" + " |" * (len(heads) + 1))
    main = headline(results, meta["device_kind"])
    lines += [
        "",
        "Headline, langadapt-train / trl sft with the defaults of each: tokens/s after step 1 "
        f"{fmt(main['tokens_per_s'], '{:.2f}x')}, peak memory "
        f"{fmt(main['peak_memory'], '{:.2f}x')}.",
    ]
    dtypes = {n: r["non_quantized_dtypes"] for n, r in results.items() if r.get("ok")}
    lines += [f"- {n}: weights not quantized in {', '.join(d)}" for n, d in dtypes.items() if d]
    lines += curves(results)
    if budget := meta.get("budget"):
        lines += ["", f"Longest max_length within {budget['budget_gib']:g} GiB (packed, batch 1):"]
        lines += [
            f"- {name}: {fmt(t['longest_max_length'], '{}')} ({t['stopped']})"
            for name, t in budget["tools"].items()
        ]
    lines += [""] + [f"- {note}" for note in meta["notes"]]
    return "\n".join(lines) + "\n"


# --- main ----------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        help="SFT data (any file or mix langadapt reads); default: generated rows (numbers "
        "written out in Chinese numerals)",
    )
    parser.add_argument(
        "--model",
        help="a model folder to train (e.g. `langadapt models smollm2`); default: a random-weight "
        "model of the shape below, built with --tokenizer",
    )
    parser.add_argument(
        "--tokenizer", help="tokenizer folder (with chat template) of the built model"
    )
    parser.add_argument("--out", required=True, help="folder for results.json/.md and the logs")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--layers", type=int, default=LLAMA3_8B["layers"])
    parser.add_argument("--hidden", type=int, default=LLAMA3_8B["hidden"])
    parser.add_argument("--intermediate", type=int, default=LLAMA3_8B["intermediate"])
    parser.add_argument("--heads", type=int, default=LLAMA3_8B["heads"])
    parser.add_argument("--kv-heads", type=int, default=LLAMA3_8B["kv_heads"])
    parser.add_argument("--vocab", type=int, default=LLAMA3_8B["vocab"])
    sizes = ", ".join(f"{k} {GPU_DEFAULTS[k]} ({CPU_DEFAULTS[k]} on the CPU)" for k in GPU_DEFAULTS)
    parser.add_argument("--rows", type=int, help=f"defaults: {sizes}")
    parser.add_argument("--steps", type=int, help="optimizer steps per run")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--grad-accum", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--packing", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--liger", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--options",
        help="comma-separated langadapt-train settings to measure, one more run each with its "
        f"defaults on this device plus the setting: {', '.join(OPTIONS)}; default: all of them "
        "on a GPU, none on the CPU (activation_offloading needs a GPU)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=0,
        help="seconds for everything; runs that would "
        "start too late are skipped and the table is written anyway (0: no limit)",
    )
    parser.add_argument(
        "--budget-gib",
        type=float,
        default=0,
        help="GPU only: also find, for each tool with its defaults, the longest max_length "
        "(1024, doubled up to --budget-max-length) that trains 2 steps of one packed sequence "
        "within this much GPU memory (torch.cuda.set_per_process_memory_fraction), e.g. 24",
    )
    parser.add_argument("--budget-max-length", type=int, default=32768)
    parser.add_argument("--build-model", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for key, value in (CPU_DEFAULTS if args.device == "cpu" else GPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not args.model and not args.tokenizer:
        parser.error("give --model (a model folder), or --tokenizer to build a random-weight one")
    if args.options is None:
        args.options = ",".join(OPTIONS) if args.device == "cuda" else ""
    args.options = [o.strip() for o in args.options.split(",") if o.strip()]
    unknown = [o for o in args.options if o not in OPTIONS]
    if unknown:
        parser.error(f"--options: unknown {unknown}; known: {', '.join(OPTIONS)}")
    if "activation_offloading" in args.options and args.device != "cuda":
        parser.error("--options activation_offloading moves activations off a GPU: --device cuda")
    if args.budget_gib and args.device != "cuda":
        parser.error("--budget-gib emulates a smaller GPU: it needs --device cuda")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.build_model:
        build_model(args, Path(args.build_model))
        return 0
    started = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    runs = [r for r in RUNS if not r[2] or args.liger]
    if args.device == "cpu" and any(r[2] for r in runs):
        runs = [r for r in runs if not r[2]]
        notes.append("Liger runs skipped: Liger kernels need CUDA (Triton)")
    for option in args.options:  # on top of langadapt-train's defaults on this device
        liger = args.device == "cuda" and args.liger
        base = "langadapt-train + Liger" if liger else "langadapt-train"
        runs.append((f"{base}, {option}", "ours", liger, OPTIONS[option]))

    env = dict(os.environ, TQDM_DISABLE="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.update(TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONUNBUFFERED="1")
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        # glibc hands tensors above a threshold it raises as memory is freed to its heap, and
        # what the heap keeps varies from run to run (±150 MiB for SmolLM2): a fixed threshold
        # returns freed tensors to the system, so peak RSS follows the memory in use.
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))

    with tempfile.TemporaryDirectory(prefix="train-vs-trl-") as tmp:
        work = Path(tmp)
        hook_dir = work / "hook"
        hook_dir.mkdir()
        (hook_dir / "sitecustomize.py").write_text(HOOK, "utf-8")
        path = [str(hook_dir), *env.get("PYTHONPATH", "").split(os.pathsep), str(REPO)]
        env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
        env["HF_HOME"] = str(work / "hf-home")  # a fresh datasets cache: no stale entries

        t0 = time.time()
        rows, trl_data, n_rows = prepare_data(args, work)
        print(f"data: {n_rows} rows ({time.time() - t0:.1f}s)", flush=True)
        if args.model:
            model = Path(args.model).resolve()
            shape = f"{model.name} (its own weights)"
        else:
            model = work / "model"
            t0 = time.time()
            build = [sys.executable, __file__, "--build-model", str(model), *_shape_argv(args)]
            proc = subprocess.run(build, env=env, check=False)
            if proc.returncode:
                print(f"!!! building the model failed (exit {proc.returncode})", flush=True)
                return 1
            print(f"model built and saved in {time.time() - t0:.0f}s", flush=True)
            shape = (
                f"Llama (random weights) hidden {args.hidden}, intermediate {args.intermediate}, "
                f"{args.layers} layers, {args.heads} heads, {args.kv_heads} kv heads, "
                f"vocab {args.vocab}"
            )

        results: dict[str, dict[str, Any]] = {}
        meta = {
            "shape": shape,
            "data": Path(args.data).name if args.data else "generated rows",
            "rows": n_rows,
            "settings": f"QLoRA nf4 r{LORA_R} alpha {LORA_ALPHA} on {','.join(TARGETS)}, lr {LR}, "
            f"{args.steps} steps, batch {args.batch_size} x accumulation {args.grad_accum}, "
            f"max_length {args.max_length}, packing {'on' if args.packing else 'off'}, "
            "gradient checkpointing on, bf16",
            "device": args.device,
            "device_kind": args.device,
            "malloc_mmap_threshold": env.get("MALLOC_MMAP_THRESHOLD_"),
            "host": platform.node(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "notes": notes,
        }
        longest = 0.0
        for name, tool, liger, extra in runs:
            left = args.deadline - (time.time() - started) if args.deadline else 1e9
            if left < longest * 1.1 or left < 30:
                notes.append(f"{name}: skipped, {left:.0f}s left of --deadline {args.deadline:.0f}")
                print(f"!!! {notes[-1]}", flush=True)
                continue
            slug = name.replace(" + ", "-").replace(", ", "-").replace(" ", "-")
            output = work / "runs" / slug
            output.parent.mkdir(exist_ok=True)
            if tool == "ours":
                cmd = ours_command(args, model, rows, output, liger, extra)
            else:
                cmd = trl_command(args, model, trl_data, output, liger)
            run_env = dict(env, TVT_HOOK_OUT=str(work / f"{slug}.json"))
            result = run_one(
                name, cmd, run_env, out / f"{slug}.log", work / f"{slug}.json", max(left - 5, 30)
            )
            longest = max(longest, result["wall_seconds"])
            results[name] = result
            if result.get("device"):
                meta["device"] = result["device"]
            if result.get("ok") and liger and not result.get("use_liger_kernel"):
                notes.append(f"{name}: use_liger_kernel was off in the trainer")
            _write(out, meta, results)  # after every run: a cut-off command keeps what ran
        if args.budget_gib:
            end = started + args.deadline if args.deadline else float("inf")
            meta["budget"] = longest_fitting(args, model, rows, trl_data, env, work, out, end)
        table = _write(out, meta, results)
        print("\n" + markdown(meta, results, table), flush=True)
        print(f"total {time.time() - started:.0f}s; results in {out}", flush=True)
    return 0 if results and all(r["ok"] for r in results.values()) else 1


def longest_fitting(
    args: argparse.Namespace,
    model: Path,
    rows: Path,
    trl_data: Path,
    env: dict[str, str],
    work: Path,
    out: Path,
    end: float,
) -> dict[str, Any]:
    """Per tool with its defaults (langadapt-train: Liger on where it runs; trl sft: off), the
    longest max_length, doubling from 1024, that trains 2 steps of one packed sequence within
    ``--budget-gib`` of GPU memory. The rows must hold 2 sequences of the longest length. No
    trial starts within a minute of ``end`` (``--deadline``)."""
    found: dict[str, Any] = {"budget_gib": args.budget_gib, "tools": {}}
    for name, tool in (("langadapt-train", "ours"), ("trl sft", "trl")):
        longest, why = None, "fits every length tried"
        length = 1024
        while length <= args.budget_max_length:
            if time.time() > end - 60:
                why = f"{length} not tried: --deadline"
                break
            trial = argparse.Namespace(**{**vars(args), "max_length": length, "steps": 2})
            trial.batch_size, trial.grad_accum, trial.packing = 1, 1, True
            slug = f"budget-{tool}-{length}"
            output = work / "runs" / slug
            output.parent.mkdir(parents=True, exist_ok=True)
            if tool == "ours":
                cmd = ours_command(trial, model, rows, output, liger=args.liger)
            else:
                cmd = trl_command(trial, model, trl_data, output, liger=False)
            run_env = dict(
                env,
                TVT_HOOK_OUT=str(work / f"{slug}.json"),
                TVT_MEMORY_BUDGET_GIB=str(args.budget_gib),
            )
            log = out / f"{slug}.log"
            result = run_one(
                f"{name}, max_length {length}",
                cmd,
                run_env,
                log,
                work / f"{slug}.json",
                min(900, max(end - time.time() - 5, 30)),
            )
            if not result["ok"]:
                oom = "OutOfMemoryError" in log.read_text("utf-8", errors="replace")
                why = (
                    f"{length} does not fit" if oom else f"{length} failed (not memory; {log.name})"
                )
                break
            longest = length
            length *= 2
        found["tools"][name] = {"longest_max_length": longest, "stopped": why}
        print(f"{name}: longest max_length within {args.budget_gib:g} GiB: {longest} ({why})")
    return found


def _shape_argv(args: argparse.Namespace) -> list[str]:
    return [
        "--tokenizer", args.tokenizer, "--out", args.out,
        "--device", args.device, "--layers", str(args.layers), "--hidden", str(args.hidden),
        "--intermediate", str(args.intermediate), "--heads", str(args.heads),
        "--kv-heads", str(args.kv_heads), "--vocab", str(args.vocab),
    ]  # fmt: skip


def _write(out: Path, meta: dict, results: dict) -> dict:
    table = ratios(results)
    payload = {
        "meta": meta,
        # langadapt-train / trl sft, the defaults of each (see headline)
        "ratios": headline(results, meta["device_kind"]),
        "runs": results,
        "ratios_ours_over_trl": table,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    (out / "results.md").write_text(markdown(meta, results, table), "utf-8")
    return table


if __name__ == "__main__":
    sys.exit(main())
