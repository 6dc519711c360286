"""The study config (``langadapt study --config study.yaml``), read and checked.

Paths are relative to the config file; ``${VAR}`` is expanded from the
environment. See docs/study.md for every key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langadapt_tasks.config_files import read_yaml_mapping

STEPS = ("train", "evaluate", "judge", "report")
_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")  # ${VAR} or ${VAR:-default}


class StudyConfigError(ValueError):
    """The study config is missing a key, has a bad value or names a missing file."""


@dataclass
class ModelSpec:
    label: str
    pretrained: str
    peft: str | None = None


@dataclass
class StudyConfig:
    path: Path
    output: Path
    base_model: str  # a path, a Hub id, or "smollm2" (the embedded model)
    instruct_model: str | None = None
    data_dir: Path | None = None
    train_config: Path | None = None
    presets: list[str] = field(default_factory=list)
    train_overrides: dict[str, Any] = field(default_factory=dict)
    adapters: dict[str, Path] = field(default_factory=dict)  # already trained: label -> dir
    tasks: list[str] = field(default_factory=list)
    limit: float | None = None
    num_fewshot: int | None = None
    gen_kwargs: str | None = None
    batch_size: str = "1"
    apply_chat_template: bool = True
    turn2: bool = False  # also MT-Bench's second turns (a second lm_eval run per model)
    lm_eval_args: list[str] = field(default_factory=list)
    judge: dict[str, Any] | None = None  # None: judge off
    baseline: str = "base"


def _expand(value: Any, where: Path) -> Any:
    if isinstance(value, str):

        def var(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if os.environ.get(name):
                return os.environ[name]
            if default is not None:
                return default
            raise StudyConfigError(
                f"{where}: ${{{name}}} is not set in the environment; set it or write "
                f"${{{name}:-default}}"
            )

        return _VAR.sub(var, value)
    if isinstance(value, dict):
        return {k: _expand(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, where) for v in value]
    return value


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def load(path: Path) -> StudyConfig:
    path = Path(path).resolve()
    raw = read_yaml_mapping(path, StudyConfigError, empty_ok=True)
    raw = _expand(raw, path)
    unknown = (
        set(raw)
        - {"output", "base_model", "instruct_model", "data_dir", "train"}
        - {
            "evaluate",
            "judge",
            "report",
        }
    )
    if unknown:
        raise StudyConfigError(f"{path}: unknown key(s) {sorted(unknown)}")
    for key in ("output", "base_model"):
        if not raw.get(key):
            raise StudyConfigError(f"{path}: '{key}' is missing")
    here = path.parent
    train = raw.get("train") or {}
    evaluate = raw.get("evaluate") or {}
    judge = raw.get("judge", "off")
    if judge in (None, False, "") or str(judge).lower() in ("off", "false", "no"):
        judge = None
    elif judge is True or str(judge).lower() in ("on", "true", "yes"):
        judge = {}  # on, with the LANGADAPT_JUDGE_* settings of the environment
    elif not isinstance(judge, dict):
        raise StudyConfigError(
            f"{path}: 'judge' is 'off', 'on' (settings from LANGADAPT_JUDGE_*) or a mapping "
            "of judge settings"
        )
    base = str(raw["base_model"])
    looks_local = base.startswith((".", "/", "~"))
    cfg = StudyConfig(
        path=path,
        output=_path(here, raw["output"]),
        base_model=str(_path(here, base)) if looks_local else base,
        instruct_model=raw.get("instruct_model"),
        data_dir=_path(here, str(raw["data_dir"])) if raw.get("data_dir") else None,
        train_config=_path(here, train["config"]) if train.get("config") else None,
        presets=list(train.get("presets") or []),
        train_overrides=dict(train.get("overrides") or {}),
        adapters={str(k): _path(here, v) for k, v in (train.get("adapters") or {}).items()},
        tasks=list(evaluate.get("tasks") or ["cmmlu_langadapt", "mtbench_langadapt_zh"]),
        limit=evaluate.get("limit"),
        num_fewshot=evaluate.get("num_fewshot"),
        gen_kwargs=evaluate.get("gen_kwargs"),
        batch_size=str(evaluate.get("batch_size", 1)),
        apply_chat_template=bool(evaluate.get("apply_chat_template", True)),
        turn2=bool(evaluate.get("turn2", False)),
        lm_eval_args=[str(a) for a in evaluate.get("lm_eval_args") or []],
        judge=judge,
        baseline=str((raw.get("report") or {}).get("baseline") or "base"),
    )
    if cfg.presets and cfg.train_config is None:
        raise StudyConfigError(
            f"{path}: train.presets needs train.config (a langadapt-train config)"
        )
    if cfg.train_config is not None and not cfg.train_config.is_file():
        raise StudyConfigError(f"{path}: train.config {cfg.train_config} not found")
    for label, adapter in cfg.adapters.items():
        if label in cfg.presets or label in ("base", "instruct"):
            raise StudyConfigError(f"{path}: adapter label {label!r} is taken")
        if not adapter.is_dir():
            raise StudyConfigError(f"{path}: adapter {label}: {adapter} is not a folder")
    return cfg
