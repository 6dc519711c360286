"""Memory and efficiency of QLoRA vs LoRA vs full fine-tuning, on the same data.

    python bench/train_memory.py --data ../shared/data/sft/alpaca_zh_demo.json [--model DIR]

For each method a fresh process loads the model, runs ``--steps`` optimizer
steps through langadapt-train's own code path (TRL SFTTrainer), and reports
its peak memory: process RSS on the CPU, ``torch.cuda.max_memory_allocated``
when a GPU is present. Also printed: trainable / total parameter counts,
tokens per second, and the share of non-padding tokens per batch with and
without packing (TRL's BFD packing with padding-free batches). Ratios are
relative to full fine-tuning in the same run. Prints figures; asserts nothing.
The model defaults to the embedded SmolLM2-135M-Instruct.

``--shape llama3-8b`` measures a model of Meta-Llama-3-8B's architecture with random
weights (built and saved first, tokenizer from ``--tokenizer``, default SmolLM2's),
for machines that cannot download the real one: memory and speed depend on the
shape, not on the weight values. ``tokens/s`` counts the tokens TRL reports,
after the first step (warm-up excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

METHODS = ("full", "lora", "qlora")
# Architectures of the study's models, for random-weight stand-ins (``--shape``).
SHAPES: dict[str, dict] = {
    "llama3-8b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 8192,
        "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
        "rms_norm_eps": 1e-5,
    },
    # A few layers of the same kind: checks the --shape path quickly on a CPU.
    "tiny": {
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 49152,
    },
}


def build_shape(shape: str, tokenizer_dir: str, out: Path) -> str:
    """Save a random-weight model of ``shape`` (bf16) plus a tokenizer into ``out``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPES[shape], tie_word_embeddings=False)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if len(tokenizer) > config.vocab_size:
        raise SystemExit(
            f"--tokenizer has {len(tokenizer)} tokens; {shape} has {config.vocab_size}"
        )
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    del model
    print(f"built {shape}: {params / 1e9:.2f}B parameters, random weights, in {out}")
    return str(out)


class _StepClock(TrainerCallback):
    """A TrainerCallback: tokens and time from the end of the first step to the last."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[float, int]] = []
        self.tokens = 0

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "num_tokens" in logs:
            self.tokens = int(float(logs["num_tokens"]))

    def on_step_end(self, args, state, control, **kw):
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.marks.append((time.perf_counter(), self.tokens))

    def steady_tokens_per_s(self) -> float | None:
        # num_tokens is logged after on_step_end, so mark k holds the tokens of steps < k.
        if len(self.marks) < 3:
            return None
        (t1, _), (tn, _) = self.marks[0], self.marks[-1]
        tokens = self.tokens - self.marks[1][1]  # steps 2..N
        return tokens / (tn - t1) if tn > t1 else None


def _cfg(args: argparse.Namespace, method: str, output: str, packing: bool = False):
    from langadapt_train.config import build

    return build(
        None,
        {
            "model_name_or_path": args.model,
            "output_dir": output,
            "data": args.data,
            "method": method,
            "max_rows": args.rows,
            "heldout": 0,
            "max_length": args.max_length,
            "per_device_train_batch_size": args.batch_size,
            "gradient_accumulation_steps": 1,
            "max_steps": args.steps,
            "learning_rate": 1e-4,
            "decontaminate": False,
            "save_steps": 10_000,
            "logging_steps": 1,
            "packing": packing,
            "gradient_checkpointing": args.gradient_checkpointing,
            "preset": "r16-a48",
        },
    )


def child(args: argparse.Namespace) -> None:
    """One method in this process: train a few steps, print one JSON line."""
    import torch
    from datasets import Dataset
    from trl import SFTTrainer

    from langadapt_train import trainer as T

    with tempfile.TemporaryDirectory() as tmp:
        cfg = _cfg(args, args.child, tmp, packing=args.packing)
        tokenizer, chosen = T.load_tokenizer(cfg)
        rows, _, _ = T.prepare_data(cfg, tokenizer, chosen)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        model, peft_config = T.load_model(cfg)
        sft = SFTTrainer(
            model=model,
            args=T.sft_config(cfg, Path(tmp)),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        trainable = sum(p.numel() for p in sft.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in sft.model.parameters())
        clock = _StepClock()
        sft.add_callback(clock)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.time()
        sft.train()
        seconds = time.time() - started
        seen = rows[: args.steps * args.batch_size]
        tokens = clock.tokens or sum(len(r["input_ids"]) for r in seen)
        print(
            json.dumps(
                {
                    "method": args.child,
                    "trainable": trainable,
                    "total": total,
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    "rss_before_model_mb": rss_before / 1024,
                    "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20
                    if torch.cuda.is_available()
                    else None,
                    "seconds": seconds,
                    "tokens_per_s": clock.steady_tokens_per_s() or tokens / seconds,
                    "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                }
            )
        )


def padding_share(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Non-padding share of the token slots in each batch, without and with packing."""
    from datasets import Dataset
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from langadapt_train import trainer as T

    with tempfile.TemporaryDirectory() as tmp:
        cfg = _cfg(args, "lora", tmp)
        tokenizer, chosen = T.load_tokenizer(cfg)
        rows, _, _ = T.prepare_data(cfg, tokenizer, chosen)
    ids = [{"input_ids": r["input_ids"]} for r in rows]
    out = {}
    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    real = slots = 0
    for i in range(0, len(ids), args.batch_size):
        batch = padded(ids[i : i + args.batch_size])
        real += int(batch["attention_mask"].sum())
        slots += batch["input_ids"].numel()
    out["no packing"] = {"share": real / slots, "batches": -(-len(ids) // args.batch_size)}
    packed = pack_dataset(Dataset.from_list(ids), args.max_length, "bfd")
    free = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
    real = slots = 0
    for i in range(0, len(packed), args.batch_size):
        batch = free([packed[j] for j in range(i, min(i + args.batch_size, len(packed)))])
        real += sum(
            len(packed[j]["input_ids"]) for j in range(i, min(i + args.batch_size, len(packed)))
        )
        slots += batch["input_ids"].numel()
    out["packing (bfd, padding-free)"] = {
        "share": real / slots,
        "batches": -(-len(packed) // args.batch_size),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        default=os.environ.get("LANGADAPT_BENCH_DATA"),
        help="a data file, mix YAML or mix name (default $LANGADAPT_BENCH_DATA)",
    )
    parser.add_argument("--model", default=None, help="model dir or Hub id (default: SmolLM2)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--packing", action="store_true", help="train on packed sequences (BFD, padding-free)"
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), help="random-weight model, this shape")
    parser.add_argument("--tokenizer", help="tokenizer for --shape (default: SmolLM2's)")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument(
        "--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True
    )
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.data:
        parser.error("--data is required (or set LANGADAPT_BENCH_DATA)")
    if args.child:
        child(args)
        return
    if (args.model is None and not args.shape) or (args.shape and args.tokenizer is None):
        from langadapt_tasks.study.models import materialize

        smollm2 = str(materialize("smollm2"))
        args.model = args.model or smollm2
        args.tokenizer = args.tokenizer or smollm2
    shape_dir = None
    if args.shape:
        shape_dir = tempfile.TemporaryDirectory(prefix=f"{args.shape}-")
        args.model = build_shape(args.shape, args.tokenizer, Path(shape_dir.name))

    print(
        f"model: {args.model}\ndata: {args.data} ({args.rows} rows, max_length "
        f"{args.max_length}, batch {args.batch_size}, {args.steps} steps, gradient "
        f"checkpointing {'on' if args.gradient_checkpointing else 'off'}, packing "
        f"{'on' if args.packing else 'off'})\n"
    )
    results = {}
    for method in args.methods.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            method,
            "--data",
            args.data,
            "--model",
            args.model,
            "--rows",
            str(args.rows),
            "--steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
            "--max-length",
            str(args.max_length),
            "--gradient-checkpointing"
            if args.gradient_checkpointing
            else "--no-gradient-checkpointing",
        ] + (["--packing"] if args.packing else [])
        env = dict(os.environ, TQDM_DISABLE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
        if proc.returncode or not lines:
            print(f"{method}: failed\n{proc.stderr[-2000:]}")
            continue
        results[method] = json.loads(lines[-1])
        print(f"{method}: {lines[-1]}", flush=True)

    if not results:
        raise SystemExit("every method failed (see above)")
    # Ratios are against the first method that ran (full, with the default --methods).
    ref = next(iter(results), None)
    base = results.get(ref)
    vs = f"vs {ref}"
    mem = "cuda_peak_mb" if base and base["cuda_peak_mb"] is not None else "peak_rss_mb"
    extra = mem == "peak_rss_mb"  # on the CPU, also RSS above the process before loading
    print(
        f"{'method':<7} {'trainable':>12} {'of total':>9} {mem:>13} {vs:>8} "
        + (f"{'above start':>12} {vs:>8} " if extra else "")
        + f"{'tokens/s':>9} {vs:>8}"
    )
    for method, r in results.items():
        line = f"{method:<7} {r['trainable']:>12,} {r['trainable'] / r['total']:>9.2%} "
        line += f"{r[mem]:>13.0f} {r[mem] / base[mem]:>7.2f}x "
        if extra:
            above = r[mem] - r["rss_before_model_mb"]
            base_above = base[mem] - base["rss_before_model_mb"]
            line += f"{above:>12.0f} {above / base_above:>7.2f}x "
        speed = r["tokens_per_s"] / base["tokens_per_s"]
        print(line + f"{r['tokens_per_s']:>9.1f} {speed:>7.2f}x")
    print("(qlora's total counts 4-bit weights as stored: two per stored element)")
    if results:
        device = next(iter(results.values()))["device"]
        print(
            f"(device: {device}; memory = "
            f"{'CUDA max allocated' if mem == 'cuda_peak_mb' else 'peak process RSS'}, MB)\n"
        )

    print("non-padding share of batch token slots:")
    shares = padding_share(args)
    for name, r in shares.items():
        print(f"  {name:<28} {r['share']:>7.1%}  ({r['batches']} batches per epoch)")
    base_share = shares["no packing"]["share"]
    gain = shares["packing (bfd, padding-free)"]["share"] / base_share
    print(f"  packing / no packing: {gain:.2f}x")


if __name__ == "__main__":
    main()
