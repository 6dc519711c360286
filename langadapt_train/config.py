"""A run's configuration: TRL's ``SFTConfig`` and ``ModelConfig`` plus ``LangadaptArguments``,
from TRL's defaults < langadapt's defaults < preset < YAML file < command-line flags.

Every key of the three classes can be set in the YAML file and with a flag. A preset only
fills ``lora_r``, ``lora_alpha`` and ``learning_rate`` where neither the YAML nor a flag set
them; every value a preset sets, and every explicit value that replaces a preset's, is
logged. The settings (langadapt's defaults and every key set) are saved with the adapter as
``langadapt_train.yaml``; loading that file again reproduces the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import logging
import math
import os
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
from langadapt_train.arguments import (
    LANGADAPT_DEFAULTS,
    METHOD_KEYS,
    METHODS,
    PRECISIONS,
    QUANT_STORAGES,
    REFUSED,
    RENAMED,
    TORCH_DTYPES,
    LangadaptArguments,
)
from langadapt_train.outputs import CONFIG_NAME
from langadapt_train.presets import PRESETS, preset_values

log = logging.getLogger("langadapt_train")

__all__ = ["CONFIG_NAME", "ConfigError", "TrainConfig", "build", "load"]


class ConfigError(ValueError):
    """A config key is unknown or its value is invalid; the message names the key."""


@functools.cache
def classes() -> tuple[type, type, type]:
    """The three argument classes, in the order the parser lists them."""
    from trl import ModelConfig, SFTConfig

    return LangadaptArguments, SFTConfig, ModelConfig


@functools.cache
def fields() -> dict[str, tuple[type, dataclasses.Field]]:
    """Every config key: ``{key: (its class, its field)}``."""
    out: dict[str, tuple[type, dataclasses.Field]] = {}
    for cls in classes():
        for f in dataclasses.fields(cls):
            if f.init:
                out.setdefault(f.name, (cls, f))
    return out


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def default(key: str) -> Any:
    """A key's value when nothing sets it: langadapt's default, else the class's own."""
    if key in LANGADAPT_DEFAULTS:
        value = LANGADAPT_DEFAULTS[key]
        return list(value) if isinstance(value, list) else value
    f = fields()[key][1]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _unknown(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(fields()) + list(RENAMED), n=3)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return ConfigError(
        f"unknown config key {key!r}; {hint}the keys are the fields of TRL's SFTConfig and "
        "ModelConfig and langadapt's own (listed by langadapt-train --help)"
    )


def _kinds(hint: Any) -> tuple[list[Any], bool]:
    """(the non-None types of ``hint``, whether None is allowed)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        return [a for a in args if a is not type(None)], type(None) in args
    return [hint], False


def _is_str_list(kind: Any) -> bool:
    return typing.get_origin(kind) is list and typing.get_args(kind) in ((str,), ())


def _split(value: str | list) -> list:
    items = [value] if isinstance(value, str) else value
    out = []
    for item in items:
        parts = item.split(",") if isinstance(item, str) else [item]
        out += [v.strip() if isinstance(v, str) else v for v in parts if v != ""]
    return out


def coerce(key: str, value: Any) -> Any:
    """Check ``value`` against the type of key ``key``; text (flags, ``${VAR}``) is parsed.

    Keys of mixed types (``dict | str``, enums) are passed on as given: TRL and transformers
    check them when training starts, before anything is written.
    """
    if key not in fields():
        raise _unknown(key)
    cls, _ = fields()[key]
    kinds, optional = _kinds(hints(cls)[key])
    if len(kinds) > 1 and value is not None:  # as given: e.g. report_to "none" is a value
        if any(_is_str_list(k) for k in kinds) and isinstance(value, str) and "," in value:
            return _split(value)
        return value
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"config key {key!r} must not be empty")
    typ = kinds[0]
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
            return value if isinstance(value, int) else number
        if typ is str:
            if not isinstance(value, str):
                raise ValueError("expected a string (quote it in YAML)")
            return value
        if _is_str_list(typ):
            value = _split(value) if isinstance(value, str | list) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a list of strings")
            return value
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config key {key!r}: bad value {value!r} ({err})") from None
    return value  # another type (an enum, a Literal): checked by TRL / transformers


# --- reading ------------------------------------------------------------------------------

# Keys whose value is a path, and keys whose value is a name or a path (langadapt_tasks.files).
PATH_KEYS = ("output_dir", "cmmlu_dir", "mt_bench_dir", "turkishmmlu_dir")
PATH_OR_NAME_KEYS = ("data", "model_name_or_path", "tokenizer", "chat_template")


def renamed(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` with the keys of langadapt's first releases under TRL's names (logged)."""
    out = dict(data)
    for old, new in RENAMED.items():
        if old not in out:
            continue
        if new in out:
            raise ConfigError(
                f"{where}: config keys {old!r} and {new!r} are the same setting; keep {new!r}"
            )
        log.warning("%s: config key %r is now %r; read as that", where, old, new)
        out[new] = out.pop(old)
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's keys, read by the rule of every config file (``langadapt_tasks.files``):
    ``${VAR}`` / ``${VAR:-default}`` expanded, paths relative to the file, old names renamed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    data = read_yaml_mapping(path, ConfigError, "a mapping of config keys", empty_ok=True)
    _refuse_unknown(data, str(path))  # before ${VAR} expansion walks the values
    data = renamed(expand_vars(data, path, ConfigError), str(path))
    base = path.resolve().parent
    for key in PATH_KEYS + PATH_OR_NAME_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            resolved = resolve_path(value, base) if key in PATH_KEYS else path_or_name(value, base)
            data[key] = str(resolved)
    return plain(data)


# Unknown keys and values that look like credentials (the one known key that is one,
# hub_token, is REFUSED); they never belong in a config file or a flag: the settings are
# saved with the adapter. Hub tokens come from HF_TOKEN / `hf auth login`.
_SECRET_KEY = re.compile(r"token|secret|passw|api_?key|credential|auth", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"\bhf_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{20,}|://[^/\s:@]+:[^/\s@]+@")


def _refuse_unknown(data: dict[str, Any], where: str) -> None:
    """Unknown keys, named with the close known ones; one that looks like a credential is
    left to ``_refuse``, which says where secrets go instead."""
    known = {*fields(), *RENAMED, *REFUSED}
    for key in data:
        if key not in known and not _SECRET_KEY.search(str(key)):
            raise ConfigError(f"{where}: {_unknown(str(key))}")


def _refuse(data: dict[str, Any], where: str) -> None:
    """Secrets, and keys that another key replaces here."""
    for key, value in data.items():
        if key in REFUSED:
            raise ConfigError(f"{where}: config key {key!r}: {REFUSED[key]}")
        if key not in fields() and _SECRET_KEY.search(str(key)):
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
    data = renamed(data, where)
    _refuse(data, where)
    out = {}
    for key, value in data.items():
        try:
            out[key] = _normalize(key, coerce(key, value))
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    return out


def _normalize(key: str, value: Any) -> Any:
    """One spelling per value where a key has several."""
    if key == "bnb_4bit_quant_storage" and value is not None:
        if value == "auto":
            return None
        if value not in QUANT_STORAGES:
            raise ConfigError(
                f"config key {key!r}: must be one of auto, {', '.join(QUANT_STORAGES)} "
                f"(got {value!r})"
            )
        return QUANT_STORAGES[value]
    return value


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


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


# --- the resolved run ---------------------------------------------------------------------


@dataclass
class TrainConfig:
    """A resolved run. ``settings`` (what is saved and compared on resume) holds langadapt's
    defaults and every key set; the rest is TRL's defaults and the keys derived below."""

    settings: dict[str, Any]
    script: LangadaptArguments = field(compare=False)
    model_args: Any = field(compare=False)  # trl.ModelConfig
    # SFTConfig's keyword arguments: the object is built when training starts, because
    # building it sets up devices and the process group.
    sft: dict[str, Any] = field(compare=False)

    @property
    def output(self) -> str:
        return self.sft["output_dir"]

    def relocate(self, output: Path, resume: bool) -> None:
        """Point the run at another folder (a sweep's ``<output>/<preset>``)."""
        self.settings["output_dir"] = self.sft["output_dir"] = str(output)
        self.script.resume = resume

    def save(self, directory: Path) -> Path:
        path = Path(directory) / CONFIG_NAME
        data = {k: v for k, v in self.settings.items() if k != "resume"}  # one invocation's
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        return path


# Keys that must be set (by YAML or flag) before training.
REQUIRED = ("model_name_or_path", "output_dir")
_AT_LEAST_ONE = (
    "lora_r",
    "lora_alpha",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "decontam_ngram",
)


def _check(value: typing.Callable[[str], Any]) -> None:
    """Value checks beyond types; each error names its key."""

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"config key {key!r}: {why} (got {value(key)!r})")

    for key in REQUIRED:
        if not value(key):
            raise ConfigError(
                f"config key {key!r} is required (set it in the YAML or with {flag_name(key)})"
            )
    if value("method") not in METHODS:
        raise bad("method", f"must be one of {', '.join(METHODS)}")
    if value("precision") not in PRECISIONS:
        raise bad("precision", f"must be one of {', '.join(PRECISIONS)}")
    if value("preset") is not None and value("preset") not in PRESETS:
        raise bad("preset", f"must be one of {', '.join(PRESETS)}")
    if value("bnb_4bit_quant_storage") is not None and value("method") != "qlora":
        raise bad("bnb_4bit_quant_storage", "applies to method qlora only; leave it unset")
    for key in _AT_LEAST_ONE:
        if value(key) is None or value(key) < 1:
            raise bad(key, "must be at least 1")
    for key in ("learning_rate", "num_train_epochs", "save_steps", "logging_steps"):
        if value(key) <= 0:
            raise bad(key, "must be positive")
    if not 0 <= value("lora_dropout") < 1:
        raise bad("lora_dropout", "must be in [0, 1)")
    if value("warmup_steps") < 0:
        raise bad("warmup_steps", "must be a step count, or a fraction < 1 of the steps")
    if value("max_steps") == 0 or value("max_steps") < -1:
        raise bad("max_steps", "must be -1 (use epochs) or a positive step count")
    if value("max_rows") is not None and value("max_rows") < 1:
        raise bad("max_rows", "must be at least 1")
    if value("heldout") is not None and value("heldout") < 0:
        raise bad("heldout", "must be a row count (>= 1) or a fraction (< 1)")
    if value("save_total_limit") is not None and value("save_total_limit") < 1:
        raise bad("save_total_limit", "must be at least 1")
    targets = value("lora_target_modules")
    if value("method") != "full" and not targets:
        raise bad("lora_target_modules", "needs at least one module name, or all-linear")
    if targets and "all-linear" in targets and len(targets) > 1:
        raise bad("lora_target_modules", "all-linear cannot be combined with module names")


_METHOD_FLAGS = {
    "qlora": {"use_peft": True, "load_in_4bit": True, "load_in_8bit": False},
    "lora": {"use_peft": True, "load_in_4bit": False, "load_in_8bit": False},
    "full": {"use_peft": False, "load_in_4bit": False, "load_in_8bit": False},
}


def _method(explicit: dict[str, tuple[Any, str]]) -> str:
    """``method``, or what TRL's own keys (use_peft, load_in_4bit) say; they must agree."""
    given = {k: explicit[k] for k in METHOD_KEYS if k in explicit}
    if given.get("load_in_8bit", (False,))[0]:
        raise ConfigError(
            f"{given['load_in_8bit'][1]}: config key 'load_in_8bit': 8-bit loading is not "
            "supported; use method: qlora (4-bit NF4) or lora"
        )
    if "method" in explicit:
        method = explicit["method"][0]
    elif given.get("use_peft", (True,))[0] is False:
        method = "full"
    elif given.get("load_in_4bit", (None,))[0] is not None:
        method = "qlora" if given["load_in_4bit"][0] else "lora"
    else:
        method = "qlora" if "use_peft" not in given else "lora"
    for key, (val, origin) in given.items():
        wanted = _METHOD_FLAGS.get(method, {}).get(key)
        if wanted is not None and val != wanted:
            raise ConfigError(
                f"{origin}: config key {key!r} = {val} contradicts method {method}; "
                "set one of them only"
            )
    return method


def _precision(explicit: dict[str, tuple[Any, str]], precision: str) -> str:
    """The compute precision: ``precision``, else what bf16 / fp16 say, else the hardware's."""
    for key in ("bf16", "fp16"):
        if key in explicit and precision not in ("auto", key) and explicit[key][0]:
            raise ConfigError(
                f"{explicit[key][1]}: config key {key!r} contradicts precision {precision}; "
                "set one of them only"
            )
    if precision != "auto":
        return precision
    for key in ("bf16", "fp16"):
        if explicit.get(key, (False,))[0]:
            return key
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def _preset_values(explicit: dict[str, tuple[Any, str]], preset: str | None) -> dict[str, Any]:
    """What a preset fills (keys not set explicitly), with every decision logged."""
    if preset is not None:
        old = explicit.get("preset")
        if old is not None and old[0] != preset:
            log.info("sweep preset %s replaces preset %s (from %s)", preset, old[0], old[1])
        explicit["preset"] = (preset, "sweep")
    name = explicit["preset"][0] if "preset" in explicit else None
    if name is None:
        return {}
    if name not in PRESETS:
        raise ConfigError(
            f"{explicit['preset'][1]}: config key 'preset': must be one of "
            f"{', '.join(PRESETS)} (got {name!r})"
        )
    values = {}
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
        if default(key) != value:
            log.info("preset %s sets %s=%s (default %s)", name, key, value, default(key))
        values[key] = value
    return values


def build(
    yaml_data: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    where: str = "config",
    preset: str | None = None,
) -> TrainConfig:
    """TRL's defaults < langadapt's < preset < YAML < flags, with every key checked.

    ``preset`` (a sweep's) replaces any preset the YAML or flags name. Errors name ``where``
    (the YAML file) or the flag.
    """
    explicit = explicit_values(yaml_data, overrides, where)
    own = {f.name: default(f.name) for f in dataclasses.fields(LangadaptArguments)}
    settings = {key: None for key in REQUIRED}  # first in the saved file
    settings.update({**own, **LANGADAPT_DEFAULTS, **_preset_values(explicit, preset)})
    settings.update({k: v for k, (v, _) in explicit.items()})
    settings["method"] = _method(explicit)

    def value(key: str) -> Any:
        return settings[key] if key in settings else default(key)

    try:
        _check(value)
    except ConfigError as err:
        key = re.search(r"config key '(\w+)'", str(err))
        origin = explicit.get(key.group(1)) if key else None
        raise ConfigError(f"{origin[1]}: {err}" if origin else str(err)) from None

    # Keys that follow from others unless they are given.
    derived: dict[str, Any] = dict(_METHOD_FLAGS[settings["method"]])
    derived["use_bnb_nested_quant"] = settings["method"] == "qlora"
    precision = _precision(explicit, settings["precision"])
    derived.update(bf16=precision == "bf16", fp16=precision == "fp16")
    derived["dtype"] = TORCH_DTYPES[precision]
    # No GPU and several processes: data parallel on the CPU (gloo); without this,
    # transformers would treat each process as a run of its own. No GPU and bf16: transformers
    # computes bf16 on the CPU only when told it is on the CPU.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    derived["use_cpu"] = not _has_cuda() and (several or (precision == "bf16" and not _has_mps()))
    derived["use_liger_kernel"] = _liger_usable()
    derived["padding_free"] = _varlen_attention(value("attn_implementation"))
    derived["data_seed"] = value("seed")
    _check_device(explicit)
    resolved = {**derived, **settings}

    args: dict[type, dict[str, Any]] = {cls: {} for cls in classes()}
    for key, (cls, _) in fields().items():
        args[cls][key] = resolved[key] if key in resolved else default(key)
    script_cls, sft_cls, model_cls = classes()
    try:
        model_args = model_cls(**args[model_cls])
    except ValueError as err:
        raise ConfigError(f"{where}: TRL's ModelConfig refused the settings: {err}") from None
    # ModelConfig turns a one-item list into a string, which PEFT would read as a regular
    # expression over full module names; keep the list (or the one name all-linear).
    targets = value("lora_target_modules")
    model_args.lora_target_modules = "all-linear" if targets == ["all-linear"] else targets
    return TrainConfig(
        settings=settings,
        script=script_cls(**args[script_cls]),
        model_args=model_args,
        sft=args[sft_cls],
    )


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _liger_usable() -> bool:
    """Liger's kernels (fused linear cross-entropy, RMSNorm, SwiGLU, RoPE) are langadapt's
    default on an NVIDIA GPU when ``liger-kernel`` is installed (``langadapt[liger]``): less
    memory and more tokens/s than TRL's default of none (docs/training.md). Otherwise off."""
    if not _has_cuda():
        return False
    if not _has_package("liger_kernel"):
        log.info(
            "use_liger_kernel: off (the liger-kernel package is not installed; "
            "pip install 'langadapt[liger]' for less memory and faster steps on this GPU)"
        )
        return False
    return True


def _varlen_attention(attn: str | None) -> bool:
    """Padding-free batches (TRL's ``padding_free``) are langadapt's default with a flash
    attention kernel, which runs the flattened batch sequence by sequence: no compute or memory
    spent on padding. With sdpa or eager, transformers attends over the whole flattened batch
    through a block-diagonal mask (quadratic in the batch's tokens), which pays only when the
    batches hold much padding (docs/training.md), so TRL's default (off) stays."""
    if not attn or "flash" not in attn:
        return False
    log.info(
        "padding_free: on (attn_implementation %s: no padding in a batch; "
        "padding_free: false turns it off)",
        attn,
    )
    return True


# Settings that need what this machine may lack: (key, present here?, what is missing, what
# to do). The first one missing is the error.
_OFF = "set {key}: false (or leave it out) to train here"
_NEEDS = (
    (
        "use_liger_kernel",
        lambda: _has_cuda(),
        "Liger's kernels are Triton kernels for an NVIDIA GPU, and this machine has none",
        _OFF,
    ),
    (
        "use_liger_kernel",
        lambda: _has_package("liger_kernel"),
        "the liger-kernel package is not installed",
        "pip install 'langadapt[liger]', or set {key}: false",
    ),
    (
        "activation_offloading",
        lambda: _has_gpu(),
        "it moves activations from the GPU to CPU memory, and this machine has none",
        _OFF,
    ),
)


def _check_device(explicit: dict[str, tuple[Any, str]]) -> None:
    """A setting turned on that cannot run here is an error before anything is loaded."""
    for key, present, missing, todo in _NEEDS:
        if key in explicit and explicit[key][0] and not present():
            raise ConfigError(
                f"{explicit[key][1]}: config key {key!r}: {missing}; {todo.format(key=key)}"
            )


def _has_package(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _has_gpu() -> bool:
    import torch

    if not hasattr(torch, "accelerator"):  # torch < 2.6
        return torch.cuda.is_available()
    return torch.accelerator.current_accelerator() is not None


def _has_mps() -> bool:
    import torch

    return torch.backends.mps.is_available()


def load(
    path: str | Path, overrides: dict[str, Any] | None = None, preset: str | None = None
) -> TrainConfig:
    return build(read_yaml(path), overrides, str(path), preset)


RUN_KEYS_IGNORED = ("resume", "output_dir")  # may differ between a run and its resumption
# Keys added since a release whose runs behaved otherwise: the value such a run had.
BEFORE_THE_KEY = {"upcast_non_quantized": True}
ONLY_FOR_METHOD = {"upcast_non_quantized": "qlora"}  # keys without effect for other methods


def saved(directory: Path) -> dict[str, Any] | None:
    """The settings saved with a run, as written (no path resolution), or None."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        return None
    data = read_yaml_mapping(path, ConfigError, "the saved config as a mapping")
    return renamed(data, str(path))


def changes(before: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """``key: old -> new`` for every setting of ``cfg`` that differs from a saved config.

    A key on one side only is compared with its default there (a run saved by an older
    release lacks the keys added since, at their defaults, or at ``BEFORE_THE_KEY``'s value
    where that release behaved otherwise).
    """
    now = cfg.settings
    out = []
    for key in sorted(set(before) | set(now)):
        if key in RUN_KEYS_IGNORED:
            continue
        if ONLY_FOR_METHOD.get(key, cfg.script.method) != cfg.script.method:
            continue  # no effect on this run's method
        known = key in fields()
        old = before.get(key, BEFORE_THE_KEY.get(key, default(key)) if known else "(unset)")
        new = now.get(key, default(key) if known else "(unset)")
        if known:
            with contextlib.suppress(ConfigError):  # compare as parsed, e.g. 1e-4 and "1e-4"
                old = _normalize(key, coerce(key, old))
        if old != new:
            out.append(f"{key}: {old!r} -> {new!r}")
    return out
