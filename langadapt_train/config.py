"""The training configuration: one dataclass, loaded from YAML, overridden by flags.

Precedence, for a single run and for every run of a sweep alike: field defaults < preset <
YAML file < command-line flags. A preset only fills ``lora_r``, ``lora_alpha`` and
``learning_rate`` where neither the YAML nor a flag set them; every value a preset sets, and
every explicit value that replaces a preset's, is logged. The resolved config is saved with
the adapter as ``langadapt_train.yaml``; loading that file again reproduces the run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from langadapt_tasks.files import (
    expand_vars,
    path_or_name,
    plain,
    read_yaml_mapping,
    resolve_path,
)
from langadapt_train.presets import PRESETS, preset_values

log = logging.getLogger("langadapt_train")

CONFIG_NAME = "langadapt_train.yaml"
METHODS = ("qlora", "lora", "full")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
# Container dtype of the packed 4-bit weights (QLoRA). FSDP shards float tensors only, and every
# tensor of one FSDP unit must share a dtype: under FSDP it must be a float type (``auto``).
QUANT_STORAGES = ("auto", "uint8", "bf16", "fp16", "fp32")
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
    bnb_4bit_quant_storage: str = "auto"
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
    turkishmmlu_dir: str | None = None
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
            if (
                isinstance(value, bool)
                or not isinstance(value, str | int | float)
                or (isinstance(value, float) and not value.is_integer())
            ):
                raise ValueError("expected an integer")
            return int(value)
        if typ is float:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValueError("expected a number")
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("expected a finite number")
            return number
        if typ is str:
            if not isinstance(value, str):
                raise ValueError("expected a string (quote it in YAML)")
            return value
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
    if cfg.bnb_4bit_quant_storage not in QUANT_STORAGES:
        raise bad("bnb_4bit_quant_storage", f"must be one of {', '.join(QUANT_STORAGES)}")
    if cfg.bnb_4bit_quant_storage != "auto" and cfg.method != "qlora":
        raise bad("bnb_4bit_quant_storage", "applies to method qlora only; leave it at auto")
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


# Keys whose value is a path, and keys whose value is a name or a path (langadapt_tasks.files).
PATH_KEYS = ("output", "cmmlu_dir", "mt_bench_dir", "turkishmmlu_dir")
PATH_OR_NAME_KEYS = ("data", "model", "tokenizer", "chat_template")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's keys, read by the rule of every config file (``langadapt_tasks.files``):
    ``${VAR}`` / ``${VAR:-default}`` expanded, paths relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    data = read_yaml_mapping(path, ConfigError, "a mapping of config keys", empty_ok=True)
    data = expand_vars(data, path, ConfigError)
    base = path.resolve().parent
    for key in PATH_KEYS + PATH_OR_NAME_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            resolved = resolve_path(value, base) if key in PATH_KEYS else path_or_name(value, base)
            data[key] = str(resolved)
    return plain(data)


# Keys and values that look like credentials; they never belong in a config file (the saved
# copy travels with the adapter). Hub tokens come from HF_TOKEN / `hf auth login`.
_SECRET_KEY = re.compile(r"token|secret|passw|api_?key|credential|auth", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"\bhf_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{20,}|://[^/\s:@]+:[^/\s@]+@")


def _refuse_secrets(data: dict[str, Any], where: str) -> None:
    for key, value in data.items():
        if key not in FIELDS and _SECRET_KEY.search(str(key)):
            raise ConfigError(
                f"{where}: config key {key!r} looks like a credential; secrets do not belong "
                "in config files (they are saved with the adapter). Set HF_TOKEN in the "
                "environment or run `hf auth login` instead"
            )
        if isinstance(value, str) and _SECRET_VALUE.search(value):
            raise ConfigError(
                f"{where}: config key {key!r} holds what looks like a token or a password; "
                "secrets do not belong in config files. Set HF_TOKEN in the environment instead"
            )


def _coerce_all(data: dict[str, Any], where: str) -> dict[str, Any]:
    _refuse_secrets(data, where)
    out = {}
    for key, value in data.items():
        try:
            out[key] = coerce(key, value)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    return out


def explicit_values(
    yaml_data: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    where: str = "config",
) -> dict[str, tuple[Any, str]]:
    """Every key set by the YAML or a flag: ``{key: (value, where it came from)}``."""
    out = {k: (v, where) for k, v in _coerce_all(yaml_data or {}, where).items()}
    for key, value in _coerce_all(overrides or {}, "command line").items():
        out[key] = (value, flag_name(key))
    return out


def build(
    yaml_data: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    where: str = "config",
    preset: str | None = None,
) -> TrainConfig:
    """Defaults < preset < YAML < flags, with every key checked.

    ``preset`` (a sweep's) replaces any preset the YAML or flags name. Errors name ``where``
    (the YAML file) or the flag.
    """
    explicit = explicit_values(yaml_data, overrides, where)
    if preset is not None:
        old = explicit.get("preset")
        if old is not None and old[0] != preset:
            log.info("sweep preset %s replaces preset %s (from %s)", preset, old[0], old[1])
        explicit["preset"] = (preset, "sweep")
    values: dict[str, Any] = {}
    name = explicit["preset"][0] if "preset" in explicit else None
    if name is not None:
        if name not in PRESETS:
            raise ConfigError(
                f"{explicit['preset'][1]}: config key 'preset': must be one of "
                f"{', '.join(PRESETS)} (got {name!r})"
            )
        for key, value in preset_values(name).items():
            if key in explicit:
                if explicit[key][0] != value:
                    log.info(
                        "%s=%s (from %s) replaces preset %s's %s",
                        key,
                        explicit[key][0],
                        explicit[key][1],
                        name,
                        value,
                    )
                continue
            default = FIELDS[key].default
            if default != value:
                log.info("preset %s sets %s=%s (default %s)", name, key, value, default)
            values[key] = value
    values.update({k: v for k, (v, _) in explicit.items()})
    cfg = TrainConfig(**values)
    try:
        _check(cfg)
    except ConfigError as err:
        key = re.search(r"config key '(\w+)'", str(err))
        origin = explicit.get(key.group(1)) if key else None
        raise ConfigError(f"{origin[1]}: {err}" if origin else str(err)) from None
    return cfg


def load(
    path: str | Path, overrides: dict[str, Any] | None = None, preset: str | None = None
) -> TrainConfig:
    return build(read_yaml(path), overrides, str(path), preset)


RUN_KEYS_IGNORED = ("resume", "output")  # may differ between a run and its resumption


def saved(directory: Path) -> dict[str, Any] | None:
    """The config saved with a run, as written (no path resolution), or None."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        return None
    return read_yaml_mapping(path, ConfigError, "the saved config as a mapping")


def changes(before: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """``key: old -> new`` for every setting of ``cfg`` that differs from a saved config."""
    now = cfg.to_dict()
    out = []
    for key in sorted(set(before) | set(now)):
        if key in RUN_KEYS_IGNORED:
            continue
        if key not in before and key in FIELDS and now[key] == FIELDS[key].default:
            continue  # a key added after the run started, at its default: nothing changed
        old, new = before.get(key, "(unset)"), now.get(key, "(unset)")
        if key in FIELDS and key in before:
            with contextlib.suppress(ConfigError):  # compare as parsed, e.g. 1e-4 and "1e-4"
                old = coerce(key, old)
        if old != new:
            out.append(f"{key}: {old!r} -> {new!r}")
    return out


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
    "bnb_4bit_quant_storage": "qlora: dtype holding the packed 4-bit weights: auto (under FSDP "
    "the compute dtype, fp32 for fp16; else uint8), uint8, bf16, fp16, fp32",
    "max_length": "tokens per sample; longer samples are truncated",
    "packing": "pack samples into max_length rows (no attention across samples)",
    "assistant_only_loss": "compute the loss on assistant tokens only",
    "system_prompt": "system message for rows without one (default: the mix's; '' for none)",
    "max_rows": "use at most this many rows of the mix",
    "heldout": "held-out rows: a count, or a fraction < 1 (default: the mix's)",
    "decontaminate": "drop rows overlapping CMMLU / MT-Bench / TurkishMMLU questions",
    "decontam_ngram": "n-gram length for decontamination",
    "cmmlu_dir": "local CMMLU data/ directory (default: $LANGADAPT_CMMLU_DIR, else the Hub)",
    "mt_bench_dir": "local MT-Bench directory with <lang>/question.jsonl "
    "(default: $LANGADAPT_MTBENCH_DIR)",
    "turkishmmlu_dir": "local TurkishMMLU directory with dev/ and test/ (default: "
    "$LANGADAPT_TURKISHMMLU_DIR, else the Hub; skipped and noted when neither is there)",
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
