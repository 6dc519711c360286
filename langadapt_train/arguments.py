"""What ``langadapt-train`` is configured with: TRL's ``SFTConfig`` and ``ModelConfig``, plus
one dataclass of langadapt's own (data, mixes, decontamination, presets, templates).

Every field of the three classes is a config key and a flag. langadapt changes some of TRL's
defaults to the study's settings (``LANGADAPT_DEFAULTS``), and still reads the key names of
its first releases (``RENAMED``), logging the new name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

METHODS = ("qlora", "lora", "full")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
# Container dtype of the packed 4-bit weights (QLoRA), short and torch names. FSDP shards
# float tensors only, and every tensor of one FSDP unit must share a dtype.
QUANT_STORAGES = {
    "uint8": "uint8",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "fp32": "float32",
    "float32": "float32",
}
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def key(default: Any, help: str) -> Any:
    """A config key: its default and its ``--help`` text (read by TRL's parser)."""
    return field(default=default, metadata={"help": help})


@dataclass
class LangadaptArguments:
    """langadapt's own settings; everything else is TRL's (SFTConfig, ModelConfig)."""

    data: str = key(
        "zh-mix", "shipped mix name (zh-mix, tr-mix), mix YAML, data file, or named source"
    )
    method: str = key(
        "qlora",
        "qlora (4-bit NF4 base + LoRA), lora or full; sets use_peft, load_in_4bit and "
        "use_bnb_nested_quant unless they are given (then it follows from them)",
    )
    preset: str | None = key(
        None, "r8-a32, r16-a32 or r16-a48: sets lora_r, lora_alpha, learning_rate"
    )
    precision: str = key(
        "auto",
        "auto (bf16 on a GPU that has it, fp16 on other GPUs, fp32 on CPU), bf16, fp16, "
        "fp32: sets bf16 / fp16 and dtype unless they are given",
    )
    tokenizer: str | None = key(None, "tokenizer to load instead of the model's")
    chat_template: str | None = key(
        None,
        "llama3, mistral, or a .jinja path (default: the tokenizer's own; TRL's "
        "chat_template_path is read as this key)",
    )
    system_prompt: str | None = key(
        None, "system message for rows without one (default: the mix's; '' for none)"
    )
    max_rows: int | None = key(None, "use at most this many rows of the mix")
    heldout: float | None = key(
        None, "held-out rows: a count, or a fraction < 1 (default: the mix's)"
    )
    decontaminate: bool = key(
        True, "drop rows overlapping CMMLU / MT-Bench / TurkishMMLU questions"
    )
    decontam_ngram: int = key(13, "n-gram length for decontamination")
    cmmlu_dir: str | None = key(
        None, "local CMMLU data/ directory (default: $LANGADAPT_CMMLU_DIR, else the Hub)"
    )
    mt_bench_dir: str | None = key(
        None,
        "local MT-Bench directory with <lang>/question.jsonl (default: $LANGADAPT_MTBENCH_DIR)",
    )
    turkishmmlu_dir: str | None = key(
        None,
        "local TurkishMMLU directory with dev/ and test/ (default: "
        "$LANGADAPT_TURKISHMMLU_DIR, else the Hub; skipped and noted when neither is there)",
    )
    upcast_non_quantized: bool = key(
        False,
        "QLoRA: keep the weights that are not quantized (embeddings, norms, LM head) in fp32, "
        "as PEFT's prepare_model_for_kbit_training does; default: in the compute dtype, as "
        "`trl sft` keeps them (less memory, faster; docs/training.md). Not under FSDP",
    )
    resume: bool = key(
        False,
        "continue the run in output_dir from its newest checkpoint (after checking that the "
        "settings and data are the run's)",
    )


# The study's settings where they differ from TRL's defaults, and what langadapt's trainer
# needs (non-reentrant checkpointing for PEFT, every step saved by step count, ...).
LANGADAPT_DEFAULTS: dict[str, object] = {
    # ModelConfig
    "lora_r": 16,
    "lora_alpha": 48,
    "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj"],
    # SFTConfig
    "learning_rate": 1.6e-5,
    "num_train_epochs": 1.0,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 4,
    "warmup_steps": 0.03,  # below 1: a fraction of the total steps
    "lr_scheduler_type": "cosine",
    "optim": "adamw_torch",
    "max_length": 1024,
    "assistant_only_loss": True,
    "gradient_checkpointing": True,
    "gradient_checkpointing_kwargs": {"use_reentrant": False},
    "save_steps": 200,
    "save_total_limit": 3,
    "logging_steps": 10,
    "report_to": ["none"],
}

# Key names of langadapt's first releases -> TRL's names (still read; the new name is logged).
RENAMED = {
    "model": "model_name_or_path",
    "output": "output_dir",
    "target_modules": "lora_target_modules",
    "warmup_ratio": "warmup_steps",
    "chat_template_path": "chat_template",  # TRL's key; langadapt's templates read it
}

# TRL / transformers keys that another key replaces here, and what to use instead.
REFUSED = {
    "resume_from_checkpoint": "set resume: true (langadapt checks the run's settings and data "
    "before it continues from the newest checkpoint in output_dir)",
    "hub_token": "secrets do not belong in config files or flags (they are saved with the "
    "adapter); set HF_TOKEN in the environment or run `hf auth login` instead",
}

# Keys set from others unless given: method -> these, precision -> bf16 / fp16 / dtype.
METHOD_KEYS = ("use_peft", "load_in_4bit", "load_in_8bit", "use_bnb_nested_quant")
