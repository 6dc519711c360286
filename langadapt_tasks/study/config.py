"""The study config (``langadapt study --config study.yaml``), read and checked.

``${VAR}`` expansion, relative paths, booleans and lists follow the rules of
``langadapt_tasks.files`` (docs/study.md, *The config*). Unknown keys are refused first,
naming the file and key (and the close known ones), before any value is looked at; then a
key that looks like a secret is refused; then every value is type-checked (numbers finite,
within the range the step that uses them accepts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langadapt_tasks.files import (
    Fields,
    check_keys,
    expand_vars,
    path_or_name,
    read_yaml_mapping,
    refuse_secrets,
    shown,
)
from langadapt_tasks.judge.rubrics import UnknownRubricError, rubric_named
from langadapt_tasks.judge.settings import (
    credentials_error,
    setting_sources,
    url_has_credentials,
)
from langadapt_tasks.study.engines import ENGINES, OWN_MODEL_ARGS, Engine
from langadapt_train.presets import PRESETS

STEPS = ("train", "evaluate", "judge", "report")
TOP_KEYS = ("output", "base_model", "instruct_model", "data_dir", "train", "evaluate", "judge")
TOP_KEYS += ("report",)
TRAIN_KEYS = ("config", "presets", "overrides", "adapters")
EVALUATE_KEYS = ("tasks", "limit", "num_fewshot", "gen_kwargs", "batch_size")
EVALUATE_KEYS += ("apply_chat_template", "turn2", "lm_eval_args")
EVALUATE_KEYS += ("engine", "processes", "shared_prefix", "engine_args")
REPORT_KEYS = ("baseline",)
DEFAULT_TASKS = ["cmmlu_langadapt", "mtbench_langadapt_zh"]
# The judge settings a study may set (LANGADAPT_JUDGE_* in lower case), and its own key.
JUDGE_STUDY_KEYS = ("allow_unscored",)
# The ranges the judge accepts (judge.settings.resolve), checked when the config is read.
JUDGE_MINIMUM = {"concurrency": 1, "max_tokens": 1, "reasks": 0, "max_retries": 0}
JUDGE_SECONDS = ("timeout", "deadline", "backoff", "max_backoff")  # > 0
# lm_eval flags the study sets itself: in lm_eval_args they would contradict it.
_OWN_FLAGS = {
    "--model": "evaluate.engine",
    "--model_args": "base_model / train / evaluate.engine_args",
    "--tasks": "evaluate.tasks",
    "--output_path": "output",
    "-o": "output",
    "--num_fewshot": "evaluate.num_fewshot",
    "-f": "evaluate.num_fewshot",
    "--limit": "evaluate.limit",
    "-L": "evaluate.limit",
    "--batch_size": "evaluate.batch_size",
    "-b": "evaluate.batch_size",
    "--gen_kwargs": "evaluate.gen_kwargs",
    "--apply_chat_template": "evaluate.apply_chat_template",
    "--log_samples": "(always on)",
    "-s": "(always on)",
    "--use_cache": "(the study's request cache)",
    "-c": "(the study's request cache)",
    "--metadata": "judge",
}


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
    num_fewshot: int | None = None  # multiple-choice tasks only, never MT-Bench
    gen_kwargs: str | None = None
    batch_size: str = "1"
    apply_chat_template: bool = True
    turn2: bool = False  # also MT-Bench's second turns (a second lm_eval run per model)
    lm_eval_args: list[str] = field(default_factory=list)
    engine: Engine = field(default_factory=Engine)  # lm-eval's backend and processes
    judge: dict[str, Any] | None = None  # None: judge off; else judge setting -> value
    allow_unscored: bool = False  # judge: a run with unscored answers counts as judged
    baseline: str = "base"


def judge_sources() -> dict[str, tuple[str, type]]:
    """Judge setting -> (its LANGADAPT_JUDGE_* variable, type), as the judge reads them."""
    # The study keeps the verdicts next to the answers it judges (the report reads them there).
    return {k: (var, kind) for k, (var, _, kind) in setting_sources().items() if k != "output_dir"}


def _model(f: Fields, value: Any, where: str) -> str:
    """A model: a folder or a Hub id, by ``files.path_or_name`` (a path must be a folder)."""
    text = f.text(value, where)
    path = path_or_name(text, f.file.parent)
    if isinstance(path, str):
        return path  # a Hub id, e.g. meta-llama/Meta-Llama-3-8B
    if not path.is_dir():
        raise f.bad(
            where,
            f"{path} is not a folder (a Hub id has no leading ./ ../ / or ~ and names "
            "nothing next to the config file)",
        )
    return str(path)


def _judge(f: Fields, raw: Any) -> tuple[dict[str, Any] | None, bool]:
    if raw is None:
        return None, False
    if not isinstance(raw, dict):
        try:
            on = f.boolean(raw, "judge")
        except StudyConfigError:
            raise f.bad(
                "judge",
                "expected off, on (settings from LANGADAPT_JUDGE_*) or a mapping of judge "
                f"settings, got {shown(raw)}",
            ) from None
        return ({} if on else None), False
    sources = judge_sources()
    judge = f.mapping(raw, "judge", [*sources, *JUDGE_STUDY_KEYS])
    out: dict[str, Any] = {}
    allow = False
    for key, value in judge.items():
        where = f"judge.{key}"
        if key == "allow_unscored":
            allow = f.boolean(value, where)
            continue
        kind = sources[key][1]
        if kind is int:
            out[key] = f.integer(value, where, minimum=JUDGE_MINIMUM.get(key, 0))
        elif kind is float:
            out[key] = f.number(value, where)
            if key in JUDGE_SECONDS and out[key] <= 0:
                raise f.bad(where, f"expected a number of seconds > 0, got {shown(value)}")
            if out[key] < 0:
                raise f.bad(where, f"expected a number >= 0, got {shown(value)}")
        elif kind is Path:
            out[key] = f.path(value, where)
        else:
            out[key] = f.text(value, where)
    if url_has_credentials(out.get("base_url", "")):  # refused now, not after generation
        raise StudyConfigError(f"{f.file}: {credentials_error('judge.base_url', out['base_url'])}")
    if "rubric" in out:  # the registry's one check, naming the key
        try:
            rubric_named(out["rubric"], f"{f.file}: judge.rubric")
        except UnknownRubricError as err:
            raise StudyConfigError(str(err)) from None
    return out, allow


def _tasks(f: Fields, raw: Any) -> list[str]:
    tasks = f.text_list(raw, "evaluate.tasks") if raw is not None else list(DEFAULT_TASKS)
    for i, task in enumerate(tasks):
        if "," in task or not task.strip() or any(c.isspace() for c in task):
            raise f.bad(
                f"evaluate.tasks[{i}]",
                f"{task!r}: one task name per item; several tasks are a list: [a, b]",
            )
    if not tasks:
        raise f.bad("evaluate.tasks", "no tasks to evaluate")
    return tasks


def _lm_eval_args(f: Fields, raw: Any) -> list[str]:
    args = f.text_list(raw, "evaluate.lm_eval_args")
    for i, arg in enumerate(args):
        flag = arg.split("=", 1)[0]
        if flag in _OWN_FLAGS:
            raise f.bad(
                f"evaluate.lm_eval_args[{i}]",
                f"{flag} is set by the study; use {_OWN_FLAGS[flag]} instead",
            )
    return args


def _limit(f: Fields, raw: Any) -> float | int | None:
    if raw is None:
        return None
    value = f.number(raw, "evaluate.limit")
    if value <= 0:
        raise f.bad("evaluate.limit", f"expected a number > 0, got {shown(raw)}")
    if value >= 1:
        if value != int(value):
            raise f.bad("evaluate.limit", f"a count (>= 1) must be whole, got {shown(raw)}")
        return int(value)
    return value  # a share of each task's questions, as lm_eval --limit 0.1


def _engine(f: Fields, evaluate: dict[str, Any]) -> Engine:
    name = f.text(evaluate.get("engine", "hf"), "evaluate.engine")
    if name not in ENGINES:
        raise f.bad("evaluate.engine", f"expected one of {', '.join(ENGINES)}, got {name!r}")
    processes = f.integer(evaluate.get("processes", 1), "evaluate.processes", minimum=1)
    if name == "vllm" and processes > 1:
        raise f.bad(
            "evaluate.processes",
            "vLLM spreads over GPUs itself: leave processes at 1 and set engine_args, "
            "e.g. tensor_parallel_size=2 or data_parallel_size=2",
        )
    extra = f.text(evaluate.get("engine_args", ""), "evaluate.engine_args", empty_ok=True)
    for item in filter(None, (x.strip() for x in extra.split(","))):
        key = item.split("=", 1)[0].strip()
        if "=" not in item or key in OWN_MODEL_ARGS:
            raise f.bad(
                "evaluate.engine_args",
                f"expected key=value model arguments other than {', '.join(OWN_MODEL_ARGS)} "
                f"(the study sets those), got {item!r}",
            )
    shared = f.boolean(evaluate.get("shared_prefix", True), "evaluate.shared_prefix")
    return Engine(name=name, processes=processes, shared_prefix=shared, model_args=extra)


def _check_all_keys(f: Fields, raw: dict[str, Any]) -> None:
    """Refuse unknown keys, at every level that has fixed keys, before any value is walked:
    a misspelt key is named as unknown, not as a secret (``bogus_key``)."""
    f.mapping(raw, "", TOP_KEYS)
    sections = {"train": TRAIN_KEYS, "evaluate": EVALUATE_KEYS, "report": REPORT_KEYS}
    sections["judge"] = (*judge_sources(), *JUDGE_STUDY_KEYS)
    for section, known in sections.items():
        if isinstance(raw.get(section), dict):
            check_keys(raw[section], known, f.file, f.error, section)


def load(path: Path) -> StudyConfig:
    path = Path(path).resolve()
    raw = read_yaml_mapping(path, StudyConfigError, empty_ok=True)
    f = Fields(path, StudyConfigError)
    _check_all_keys(f, raw)
    refuse_secrets(raw, path, StudyConfigError)
    raw = expand_vars(raw, path, StudyConfigError)
    for key in ("output", "base_model"):
        if raw.get(key) in (None, ""):
            raise StudyConfigError(f"{path}: '{key}' is missing")
    train = f.mapping(raw.get("train"), "train", TRAIN_KEYS)
    evaluate = f.mapping(raw.get("evaluate"), "evaluate", EVALUATE_KEYS)
    report = f.mapping(raw.get("report"), "report", REPORT_KEYS)
    judge, allow_unscored = _judge(f, raw.get("judge", "off"))
    base = f.text(raw["base_model"], "base_model")
    presets = f.text_list(train.get("presets"), "train.presets")
    for i, preset in enumerate(presets):
        if preset not in PRESETS:
            raise f.bad(
                f"train.presets[{i}]", f"unknown preset {preset!r}; known: {', '.join(PRESETS)}"
            )
    overrides = f.mapping(train.get("overrides"), "train.overrides")
    for key, value in overrides.items():
        if isinstance(value, (dict, list)) or value is None:
            raise f.bad(
                f"train.overrides.{key}", "expected a single value (a langadapt-train flag)"
            )
    adapters = f.mapping(train.get("adapters"), "train.adapters")
    batch = f.text(evaluate.get("batch_size", 1), "evaluate.batch_size")
    if not (batch.isdigit() or batch == "auto" or batch.startswith("auto:")):
        raise f.bad("evaluate.batch_size", f"expected a number or auto / auto:N, got {batch!r}")
    num_fewshot = evaluate.get("num_fewshot")
    gen_kwargs = evaluate.get("gen_kwargs")
    cfg = StudyConfig(
        path=path,
        output=f.path(raw["output"], "output"),
        base_model=base if base == "smollm2" else _model(f, base, "base_model"),
        instruct_model=(
            _model(f, raw["instruct_model"], "instruct_model")
            if raw.get("instruct_model") not in (None, "")
            else None
        ),
        data_dir=f.path(raw["data_dir"], "data_dir") if raw.get("data_dir") else None,
        train_config=f.path(train["config"], "train.config") if train.get("config") else None,
        presets=presets,
        train_overrides=dict(overrides),
        adapters={
            f.text(k, "train.adapters"): f.path(v, f"train.adapters.{k}")
            for k, v in adapters.items()
        },
        tasks=_tasks(f, evaluate.get("tasks")),
        limit=_limit(f, evaluate.get("limit")),
        num_fewshot=(
            None
            if num_fewshot is None
            else f.integer(num_fewshot, "evaluate.num_fewshot", minimum=0)
        ),
        gen_kwargs=None if gen_kwargs is None else f.text(gen_kwargs, "evaluate.gen_kwargs"),
        batch_size=batch,
        apply_chat_template=f.boolean(
            evaluate.get("apply_chat_template", True), "evaluate.apply_chat_template"
        ),
        turn2=f.boolean(evaluate.get("turn2", False), "evaluate.turn2"),
        lm_eval_args=_lm_eval_args(f, evaluate.get("lm_eval_args")),
        engine=_engine(f, evaluate),
        judge=judge,
        allow_unscored=allow_unscored,
        baseline=f.text(report.get("baseline", "base"), "report.baseline"),
    )
    if cfg.presets and cfg.train_config is None:
        raise StudyConfigError(
            f"{path}: train.presets needs train.config (a langadapt-train config)"
        )
    if cfg.train_config is not None and not cfg.train_config.is_file():
        raise StudyConfigError(f"{path}: train.config {cfg.train_config} not found")
    for label, adapter in cfg.adapters.items():
        if label in cfg.presets or label in ("base", "instruct"):
            raise StudyConfigError(f"{path}: train.adapters.{label}: the label is taken")
        if not adapter.is_dir():
            raise StudyConfigError(f"{path}: train.adapters.{label}: {adapter} is not a folder")
    return cfg
