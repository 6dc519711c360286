"""The training configuration: one dataclass, loaded from YAML, overridden by flags.

Precedence: field defaults < preset < YAML file < command-line flags. A preset
only fills ``lora_r``, ``lora_alpha`` and ``learning_rate`` where neither the
YAML nor a flag set them. The resolved config is saved with the adapter as
``langadapt_train.yaml``; loading that file again reproduces the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from langadapt_train.presets import PRESETS, preset_values

CONFIG_NAME = "langadapt_train.yaml"
METHODS = ("qlora", "lora", "full")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj"]


class ConfigError(ValueError):
    """A config key is unknown or its value is invalid; the message names the key."""


@dataclass
class TrainConfig:
    # What to train and where to put it.
    model: str = ""
    output: str = ""
    data: str = "zh-mix"
    tokenizer: str | None = None
    chat_template: str | None = None
    method: str = "qlora"
    preset: str | None = None
    # Adapter.
    lora_r: int = 16
    lora_alpha: int = 48
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    # Optimisation.
    learning_rate: float = 1.6e-5
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    warmup_ratio: float = 0.03
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    precision: str = "auto"
    # Sequences.
    max_length: int = 1024
    packing: bool = False
    assistant_only_loss: bool = True
    gradient_checkpointing: bool = True
    seed: int = 42
    # Data preparation.
    system_prompt: str | None = None
    max_rows: int | None = None
    heldout: float | None = None
    decontaminate: bool = True
    decontam_ngram: int = 13
    cmmlu_dir: str | None = None
    mt_bench_dir: str | None = None
    # Checkpoints and logging.
    save_steps: int = 200
    save_total_limit: int | None = 3
    logging_steps: int = 10
    report_to: list[str] = field(default_factory=lambda: ["none"])
    resume: bool = False
    trust_remote_code: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / CONFIG_NAME
        data = self.to_dict()
        data.pop("resume")  # a property of one invocation, not of the run
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        return path


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)
# Keys that must be set (by YAML or flag) before training.
REQUIRED = ("model", "output")
PRESET_KEYS = ("lora_r", "lora_alpha", "learning_rate")


def _base_type(hint: Any) -> tuple[Any, bool]:
    """(type, optional) for ``T`` or ``T | None``."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return hint, False


def coerce(key: str, value: Any) -> Any:
    """Check ``value`` against the type of field ``key``; strings from flags are parsed."""
    if key not in FIELDS:
        raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(FIELDS)}")
    typ, optional = _base_type(_HINTS[key])
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"config key {key!r} must not be empty")
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
                return value.lower() in ("true", "yes", "1")
            raise ValueError("expected true or false")
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected an integer")
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if typ is str:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError("expected a string")
            return str(value)
        if typing.get_origin(typ) is list:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a list of strings")
            return list(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config key {key!r}: bad value {value!r} ({err})") from None
    raise AssertionError(f"unhandled type for {key}: {typ}")


def _check(cfg: TrainConfig) -> None:
    """Value checks beyond types; each error names its key."""

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"config key {key!r}: {why} (got {getattr(cfg, key)!r})")

    for key in REQUIRED:
        if not getattr(cfg, key):
            raise ConfigError(
                f"config key {key!r} is required (set it in the YAML or with "
                f"--{key.replace('_', '-')})"
            )
    if cfg.method not in METHODS:
        raise bad("method", f"must be one of {', '.join(METHODS)}")
    if cfg.precision not in PRECISIONS:
        raise bad("precision", f"must be one of {', '.join(PRECISIONS)}")
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise bad("preset", f"must be one of {', '.join(PRESETS)}")
    for key in (
        "lora_r",
        "lora_alpha",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_length",
        "save_steps",
        "logging_steps",
        "decontam_ngram",
    ):
        if getattr(cfg, key) < 1:
            raise bad(key, "must be at least 1")
    for key in ("learning_rate", "num_train_epochs"):
        if getattr(cfg, key) <= 0:
            raise bad(key, "must be positive")
    if not 0 <= cfg.lora_dropout < 1:
        raise bad("lora_dropout", "must be in [0, 1)")
    if not 0 <= cfg.warmup_ratio < 1:
        raise bad("warmup_ratio", "must be in [0, 1)")
    if cfg.max_steps == 0 or cfg.max_steps < -1:
        raise bad("max_steps", "must be -1 (use epochs) or a positive step count")
    if cfg.max_rows is not None and cfg.max_rows < 1:
        raise bad("max_rows", "must be at least 1")
    if cfg.heldout is not None and cfg.heldout < 0:
        raise bad("heldout", "must be a row count (>= 1) or a fraction (< 1)")
    if cfg.save_total_limit is not None and cfg.save_total_limit < 1:
        raise bad("save_total_limit", "must be at least 1")
    if not cfg.target_modules:
        raise bad("target_modules", "needs at least one module name, or all-linear")
    if "all-linear" in cfg.target_modules and len(cfg.target_modules) > 1:
        raise bad("target_modules", "all-linear cannot be combined with module names")


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    # Relative paths in a config file are relative to the file, with ${VAR} expanded.
    for key in (
        "output",
        "data",
        "model",
        "tokenizer",
        "chat_template",
        "cmmlu_dir",
        "mt_bench_dir",
    ):
        value = data.get(key)
        if isinstance(value, str):
            # Only paths written relative in the file are taken relative to it; a value that
            # comes from an environment variable is used as given (relative to the cwd).
            data[key] = os.path.expandvars(_resolve_path(value, path.parent))
            if "$" in data[key]:
                raise ConfigError(
                    f"{path}: config key {key!r}: unset environment variable in {value!r}"
                )
    return data


def _resolve_path(value: str, base: Path) -> str:
    """``./x`` or ``../x`` in a config file is taken relative to the file."""
    if value.startswith(("./", "../")):
        return str((base / value).resolve())
    return value


def build(
    yaml_data: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults < preset < YAML < flags, with every key checked."""
    explicit: dict[str, Any] = {}
    for source in (yaml_data or {}, overrides or {}):
        for key, value in source.items():
            explicit[key] = coerce(key, value)
    values: dict[str, Any] = {}
    preset = explicit.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(
                f"config key 'preset': must be one of {', '.join(PRESETS)} (got {preset!r})"
            )
        values.update(preset_values(preset))
    values.update(explicit)
    cfg = TrainConfig(**values)
    _check(cfg)
    return cfg


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    return build(read_yaml(path), overrides)


HELP = {
    "model": "base model: Hub id or local directory (required)",
    "output": "output directory for the adapter (required; the root directory for sweep)",
    "data": "shipped mix name (zh-mix, tr-mix), mix YAML, data file, or named source",
    "tokenizer": "tokenizer to load instead of the model's",
    "chat_template": "llama3, mistral, or a .jinja path (default: the tokenizer's own)",
    "method": "qlora (default), lora or full",
    "preset": "r8-a32, r16-a32 or r16-a48: sets lora_r, lora_alpha, learning_rate",
    "target_modules": "comma-separated module names, or all-linear",
    "precision": "auto (bf16 on a GPU that has it, fp16 on other GPUs, fp32 on CPU), bf16, "
    "fp16, fp32",
    "max_length": "tokens per sample; longer samples are truncated",
    "packing": "pack samples into max_length rows (no attention across samples)",
    "assistant_only_loss": "compute the loss on assistant tokens only",
    "system_prompt": "system message for rows without one (default: the mix's; '' for none)",
    "max_rows": "use at most this many rows of the mix",
    "heldout": "held-out rows: a count, or a fraction < 1 (default: the mix's)",
    "decontaminate": "drop rows overlapping CMMLU / MT-Bench questions",
    "decontam_ngram": "n-gram length for decontamination",
    "cmmlu_dir": "local CMMLU data/ directory (default: $LANGADAPT_CMMLU_DIR, else the Hub)",
    "mt_bench_dir": "local MT-Bench directory with <lang>/question.jsonl "
    "(default: $LANGADAPT_MTBENCH_DIR)",
    "report_to": "comma-separated loggers for transformers/TRL (none, wandb, tensorboard, ...)",
    "resume": "continue the run in --output from its newest checkpoint",
}


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field. Unset flags are absent from the parsed namespace."""
    for key in FIELDS:
        typ, _ = _base_type(_HINTS[key])
        kwargs: dict[str, Any] = {"dest": key, "default": argparse.SUPPRESS}
        default = FIELDS[key].default
        if default is dataclasses.MISSING:
            default = FIELDS[key].default_factory()  # type: ignore[misc]
        shown = "none" if default in ("", None) else default
        kwargs["help"] = f"{HELP.get(key, '')} (default: {shown})".lstrip()
        if typ is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = "LIST" if typing.get_origin(typ) is list else typ.__name__.upper()
        parser.add_argument(flag_name(key), **kwargs)


def overrides_from(namespace: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(namespace).items() if k in FIELDS}
