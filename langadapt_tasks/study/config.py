"""The study config (``langadapt study --config study.yaml``), read and checked.

``${VAR}`` expansion, relative paths, booleans and lists follow the rules of
``langadapt_tasks.files`` (docs/study.md, *The config*). Unknown keys are refused first,
naming the file and key (and the close known ones), before any value is looked at; then a
key that looks like a secret is refused; then every value is type-checked (numbers finite,
within the range the step that uses them accepts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.mtbench import CATEGORIES
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
from langadapt_tasks.study.grid import (
    LANGUAGE_KEYS,
    MODEL_KEYS,
    VARIANTS,
    GridLanguage,
    GridModel,
    cell_overrides,
    label,
    parse_languages,
    parse_models,
)
from langadapt_train.presets import PRESETS

STEPS = ("train", "evaluate", "judge", "report")
TOP_KEYS = ("output", "base_model", "instruct_model", "data_dir", "train", "evaluate", "judge")
TOP_KEYS += ("report", "models", "languages")
TRAIN_KEYS = ("config", "presets", "overrides", "adapters")
EVALUATE_KEYS = ("tasks", "limit", "num_fewshot", "gen_kwargs", "batch_size")
EVALUATE_KEYS += ("apply_chat_template", "turn2", "lm_eval_args", "retention")
EVALUATE_KEYS += ("engine", "processes", "shared_prefix", "engine_args")
REPORT_KEYS = ("baseline", "compare")
COMPARE = ("published",)  # report.compare: the study's published tables beside ours
DEFAULT_TASKS = ["cmmlu_langadapt", "mtbench_langadapt_zh"]
# English retention: MMLU (``mmlu`` is the whole group) and English MT-Bench, turn 1.
RETENTION_TASK = re.compile(
    rf"^(mmlu|mmlu_langadapt(_[a-z_]+)?|mtbench_langadapt_en(_({'|'.join(CATEGORIES)}))?)$"
)
# The judge settings a study may set (LANGADAPT_JUDGE_* in lower case), and its own key.
JUDGE_STUDY_KEYS = ("allow_unscored", "rubrics")
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
    """One model the study evaluates: base, instruct, or base plus an adapter."""

    label: str
    pretrained: str
    peft: str | None = None
    tasks: tuple[str, ...] = ()  # its tasks; () = the study's (``StudyConfig.tasks``)
    model: str = ""  # the grid's model label ("" in the one-model form)
    variant: str = ""  # base, instruct, a preset or an adapter's label ("" = label)
    language: str = ""  # an adapter's language in the grid ("" for base and instruct)


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
    # English retention tasks (study.retention): None = the default ones that are available.
    retention: list[str] | None = None
    lm_eval_args: list[str] = field(default_factory=list)
    engine: Engine = field(default_factory=Engine)  # lm-eval's backend and processes
    judge: dict[str, Any] | None = None  # None: judge off; else judge setting -> value
    allow_unscored: bool = False  # judge: a run with unscored answers counts as judged
    # Pairwise rubrics (judge.rubrics): each model against the baseline and its instruct model.
    pairwise: list[str] = field(default_factory=list)
    judge_single: bool = True  # whether answers are also scored one by one (a single rubric)
    baseline: str = "base"
    compare: str | None = None  # "published": the study's tables beside ours in the report
    # The grid (study.grid); the one-model form is one unnamed model and language.
    models: dict[str, GridModel] = field(default_factory=dict)
    languages: dict[str, GridLanguage] = field(default_factory=dict)
    # (model label, language code) -> the langadapt-train fields of that cell.
    cell_overrides: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def is_grid(self) -> bool:
        """Whether the config names its models or languages (labels are then paths)."""
        return any(self.models) or any(self.languages)


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


@dataclass(frozen=True)
class JudgeChoice:
    """The study's judge: its settings (None: off), its own switches, its pairwise rubrics."""

    settings: dict[str, Any] | None
    allow_unscored: bool = False
    pairwise: tuple[str, ...] = ()  # pairwise rubrics (judge.rubrics), besides the single one
    single: bool = True  # whether the answers are also scored one by one


def _rubrics(f: Fields, judge: dict[str, Any], out: dict[str, Any]) -> JudgeChoice:
    """``judge.rubric`` or ``judge.rubrics``: at most one single-answer rubric (written to
    ``out`` as the judge's rubric) and any pairwise ones."""
    if "rubric" in judge and "rubrics" in judge:
        raise f.bad("judge.rubrics", "give judge.rubric or judge.rubrics, not both")
    key = "rubrics" if "rubrics" in judge else "rubric"
    names = f.text_list(judge.get(key), f"judge.{key}")
    records = []
    for i, name in enumerate(names):
        try:
            where = "judge.rubric" if key == "rubric" else f"judge.rubrics[{i}]"
            records.append(rubric_named(name, f"{f.file}: {where}"))
        except UnknownRubricError as err:
            raise StudyConfigError(str(err)) from None
    single = [r.name for r in records if r.kind == "single"]
    if len(single) > 1:
        raise f.bad(
            f"judge.{key}",
            f"one single-answer rubric at a time ({', '.join(single)}): their scores are on "
            "different scales; judge again with another one afterwards (langadapt judge)",
        )
    out.pop("rubric", None)
    if single:
        out["rubric"] = single[0]
    pairwise = tuple(dict.fromkeys(r.name for r in records if r.kind == "pairwise"))
    return JudgeChoice(out, pairwise=pairwise, single=bool(single) or not names)


def _judge(f: Fields, raw: Any) -> JudgeChoice:
    if raw is None:
        return JudgeChoice(None)
    if not isinstance(raw, dict):
        try:
            on = f.boolean(raw, "judge")
        except StudyConfigError:
            raise f.bad(
                "judge",
                "expected off, on (settings from LANGADAPT_JUDGE_*) or a mapping of judge "
                f"settings, got {shown(raw)}",
            ) from None
        return JudgeChoice({} if on else None)
    sources = judge_sources()
    judge = f.mapping(raw, "judge", [*sources, *JUDGE_STUDY_KEYS])
    out: dict[str, Any] = {}
    allow = False
    for key, value in judge.items():
        where = f"judge.{key}"
        if key == "allow_unscored":
            allow = f.boolean(value, where)
            continue
        if key in ("rubric", "rubrics"):
            continue  # _rubrics
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
    choice = _rubrics(f, judge, out)
    return JudgeChoice(out, allow, choice.pairwise, choice.single)


def _tasks(f: Fields, raw: Any, where: str = "evaluate.tasks") -> list[str]:
    tasks = f.text_list(raw, where) if raw is not None else list(DEFAULT_TASKS)
    for i, task in enumerate(tasks):
        if "," in task or not task.strip() or any(c.isspace() for c in task):
            raise f.bad(
                f"{where}[{i}]",
                f"{task!r}: one task name per item; several tasks are a list: [a, b]",
            )
    if not tasks:
        raise f.bad(where, "no tasks to evaluate")
    if len(set(tasks)) != len(tasks):
        raise f.bad(where, f"a task is listed twice: {', '.join(tasks)}")
    return tasks


def _retention(f: Fields, evaluate: dict[str, Any]) -> list[str] | None:
    """``evaluate.retention``: English MMLU and MT-Bench tasks; absent: the defaults."""
    if "retention" not in evaluate:
        return None
    raw = evaluate["retention"]
    tasks = [] if raw is None else f.text_list(raw, "evaluate.retention")
    for i, task in enumerate(tasks):
        if not RETENTION_TASK.match(task):
            raise f.bad(
                f"evaluate.retention[{i}]",
                f"{task!r} is not an English retention task: mmlu (or an mmlu_langadapt "
                "category or subject) and mtbench_langadapt_en (or one of its categories); "
                "[] turns retention off",
            )
    if len(set(tasks)) != len(tasks):
        raise f.bad("evaluate.retention", f"a task is listed twice: {', '.join(tasks)}")
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
    for section, known in (("models", MODEL_KEYS), ("languages", LANGUAGE_KEYS)):
        for name, spec in (
            (raw.get(section) or {}).items() if isinstance(raw.get(section), dict) else ()
        ):
            if isinstance(spec, dict):
                check_keys(spec, known, f.file, f.error, f"{section}.{name}")


def load(path: Path) -> StudyConfig:
    path = Path(path).resolve()
    raw = read_yaml_mapping(path, StudyConfigError, empty_ok=True)
    f = Fields(path, StudyConfigError)
    _check_all_keys(f, raw)
    refuse_secrets(raw, path, StudyConfigError)
    raw = expand_vars(raw, path, StudyConfigError)
    _check_forms(f, raw)
    if raw.get("output") in (None, ""):
        raise StudyConfigError(f"{path}: 'output' is missing")
    train = f.mapping(raw.get("train"), "train", TRAIN_KEYS)
    evaluate = f.mapping(raw.get("evaluate"), "evaluate", EVALUATE_KEYS)
    report = f.mapping(raw.get("report"), "report", REPORT_KEYS)
    choice = _judge(f, raw.get("judge", "off"))
    presets = f.text_list(train.get("presets"), "train.presets")
    for i, preset in enumerate(presets):
        if preset not in PRESETS:
            raise f.bad(
                f"train.presets[{i}]", f"unknown preset {preset!r}; known: {', '.join(PRESETS)}"
            )
        if preset in presets[:i]:
            raise f.bad(f"train.presets[{i}]", f"{preset!r} is listed twice")
    if "models" in raw:
        models = parse_models(f, raw["models"], lambda v, w: _base(f, v, w))
    else:
        instruct = raw.get("instruct_model")
        models = {
            "": GridModel(
                "",
                _base(f, raw["base_model"], "base_model"),
                None if instruct in (None, "") else _model(f, instruct, "instruct_model"),
            )
        }
    if "languages" in raw:
        languages = parse_languages(f, raw["languages"], lambda v, w: _tasks(f, v, w))
        tasks = list(dict.fromkeys(t for lang in languages.values() for t in lang.tasks))
    else:
        tasks = _tasks(f, evaluate.get("tasks"))
        languages = {"": GridLanguage("", tuple(tasks))}
    first = next(iter(models.values()))
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
        base_model=first.base,
        instruct_model=first.instruct,
        data_dir=f.path(raw["data_dir"], "data_dir") if raw.get("data_dir") else None,
        train_config=f.path(train["config"], "train.config") if train.get("config") else None,
        presets=presets,
        train_overrides=dict(overrides),
        adapters={
            f.text(k, "train.adapters"): f.path(v, f"train.adapters.{k}")
            for k, v in adapters.items()
        },
        tasks=tasks,
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
        retention=_retention(f, evaluate),
        lm_eval_args=_lm_eval_args(f, evaluate.get("lm_eval_args")),
        engine=_engine(f, evaluate),
        judge=choice.settings,
        allow_unscored=choice.allow_unscored,
        pairwise=list(choice.pairwise),
        judge_single=choice.single,
        baseline=f.text(report.get("baseline", "base"), "report.baseline"),
        compare=_compare(f, report.get("compare")),
        models=models,
        languages=languages,
        cell_overrides={
            (m.label, lang.code): cell_overrides(f, dict(overrides), m, lang)
            for m in models.values()
            for lang in languages.values()
        },
    )
    if cfg.presets and cfg.train_config is None:
        raise StudyConfigError(
            f"{path}: train.presets needs train.config (a langadapt-train config)"
        )
    if cfg.train_config is not None and not cfg.train_config.is_file():
        raise StudyConfigError(f"{path}: train.config {cfg.train_config} not found")
    for name, adapter in cfg.adapters.items():
        if name in cfg.presets or name in VARIANTS:
            raise StudyConfigError(f"{path}: train.adapters.{name}: the label is taken")
        if not adapter.is_dir():
            raise StudyConfigError(f"{path}: train.adapters.{name}: {adapter} is not a folder")
    _check_baseline(f, cfg)
    return cfg


def _base(f: Fields, value: Any, where: str) -> str:
    """A base model: "smollm2" (the embedded model), a folder or a Hub id."""
    text = f.text(value, where)
    return text if text == "smollm2" else _model(f, text, where)


def _compare(f: Fields, raw: Any) -> str | None:
    if raw in (None, "", False):
        return None
    value = f.text(raw, "report.compare")
    if value not in COMPARE:
        raise f.bad("report.compare", f"expected {' or '.join(COMPARE)}, got {value!r}")
    return value


def _check_forms(f: Fields, raw: dict[str, Any]) -> None:
    """The one-model form and the grid are not mixed: each setting has one place."""
    if "models" in raw:
        for key in ("base_model", "instruct_model"):
            if key in raw:
                raise f.bad(key, "the grid names its models under 'models'; remove this key")
    elif raw.get("base_model") in (None, ""):
        raise StudyConfigError(f"{f.file}: 'base_model' is missing (or give 'models')")
    if "languages" in raw and "tasks" in (raw.get("evaluate") or {}):
        raise f.bad("evaluate.tasks", "the grid's tasks are per language: languages.<code>.tasks")
    if ("models" in raw or "languages" in raw) and (raw.get("train") or {}).get("adapters"):
        raise f.bad(
            "train.adapters", "adapters trained elsewhere go with the one-model form (base_model)"
        )


def _check_baseline(f: Fields, cfg: StudyConfig) -> None:
    """``report.baseline`` in the grid: a model's label, or a variant (each model's own).
    (The one-model form keeps its rule: a label that is not evaluated means the first.)"""
    if not cfg.is_grid:
        return
    labels = [label(m.label, "base") for m in cfg.models.values()]
    labels += [label(m.label, "instruct") for m in cfg.models.values() if m.instruct]
    labels += [label(m, lang, p) for m in cfg.models for lang in cfg.languages for p in cfg.presets]
    labels += list(cfg.adapters)
    allowed = [*labels, "base", "instruct", *cfg.presets]
    if cfg.baseline not in allowed:
        raise f.bad(
            "report.baseline",
            f"{cfg.baseline!r} is none of the study's models: {', '.join(dict.fromkeys(allowed))}",
        )
