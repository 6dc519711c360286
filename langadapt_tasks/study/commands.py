"""What the study runs, as a pure function of its config: the evaluated models, the
training cells, each model's ``lm_eval`` runs and the exact commands (``study.plan``
lists them; ``study.run`` runs them)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.mtbench import CATEGORIES, METADATA_TURN1, group_name
from langadapt_tasks.study.config import ModelSpec, StudyConfig
from langadapt_tasks.study.engines import (
    SHARED_PREFIX_MODEL,
    executable,
    launcher,
    model_name,
    shares_prefix,
)
from langadapt_tasks.study.engines import model_args as engine_model_args
from langadapt_tasks.study.grid import VARIANTS, GridLanguage, GridModel, label
from langadapt_tasks.study.heldout import heldout_runs
from langadapt_tasks.study.knowledge import languages
from langadapt_tasks.study.layout import (
    HELDOUT_DIR,
    KNOWLEDGE_DIR,
    MTBENCH_DIR,
    TURN2_DIR,
    EvalRun,
    adapter_dir,
    eval_dir,
)
from langadapt_tasks.study.retention import ENGLISH, RUBRIC, retention_runs
from langadapt_tasks.study.retention import FOLDERS as RETENTION_FOLDERS

SUBRUNS = (MTBENCH_DIR, TURN2_DIR, KNOWLEDGE_DIR, HELDOUT_DIR, *RETENTION_FOLDERS)
# A turn-1 MT-Bench task: a language's group, or one of its categories.
_MT_TURN1 = re.compile(rf"^mtbench_langadapt_([a-z][a-z0-9]{{1,7}})(?:_({'|'.join(CATEGORIES)}))?$")


@dataclass(frozen=True)
class TrainCell:
    """One (model, language) of the grid: its presets, trained by one sweep."""

    model: GridModel
    language: GridLanguage
    base: str  # the base model as the commands name it (a folder or a Hub id)
    overrides: dict[str, Any]

    @property
    def name(self) -> str:
        return label(self.model.label, self.language.code) or "adapters"

    def folder(self, cfg: StudyConfig) -> Path:
        return cfg.output / "adapters" / label(self.model.label, self.language.code)

    def adapter(self, cfg: StudyConfig, preset: str) -> Path:
        return adapter_dir(cfg, preset, self.model.label, self.language.code)


def train_cells(cfg: StudyConfig, bases: Mapping[str, str]) -> list[TrainCell]:
    """Every cell that trains adapters (none without presets); ``bases``: model label ->
    its base as the commands name it."""
    if not cfg.presets:
        return []
    return [
        TrainCell(m, lang, bases[m.label], cfg.cell_overrides.get((m.label, lang.code), {}))
        for m in cfg.models.values()
        for lang in cfg.languages.values()
    ]


def train_command(cfg: StudyConfig, cell: TrainCell, presets: Sequence[str]) -> list[str]:
    """``langadapt-train sweep`` for ``presets`` of the cell."""
    args = [executable("langadapt-train"), "sweep", "--config", str(cfg.train_config)]
    args += ["--presets", ",".join(presets), "--output_dir", str(cell.folder(cfg))]
    args += ["--model_name_or_path", cell.base]
    if cell.language.data:
        args += ["--data", cell.language.data]
    if cell.model.chat_template:
        args += ["--chat_template", cell.model.chat_template]
    for key, value in cell.overrides.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            args += [flag, str(value)]
    return args


def models(cfg: StudyConfig, bases: Mapping[str, str]) -> list[ModelSpec]:
    """Every model the study evaluates, in order: per base model its base and instruct
    (on every language's tasks), then its adapters (on their language's tasks); then the
    adapters trained elsewhere (``train.adapters``, one-model form)."""
    out: list[ModelSpec] = []
    for m in cfg.models.values():
        base = bases[m.label]
        out.append(ModelSpec(label(m.label, "base"), base, None, (), m.label, "base"))
        if m.instruct:
            name = label(m.label, "instruct")
            out.append(ModelSpec(name, m.instruct, None, (), m.label, "instruct"))
        for lang in cfg.languages.values():
            tasks = lang.tasks if cfg.is_grid else ()
            for p in cfg.presets:
                peft = str(adapter_dir(cfg, p, m.label, lang.code))
                name = label(m.label, lang.code, p)
                out.append(ModelSpec(name, base, peft, tasks, m.label, p, lang.code))
    base = bases[next(iter(cfg.models))]
    out += [ModelSpec(name, base, str(path)) for name, path in cfg.adapters.items()]
    return out


def model_tasks(cfg: StudyConfig, model: ModelSpec) -> list[str]:
    """The model's tasks: its language's in the grid, else the study's."""
    return list(model.tasks or cfg.tasks)


def turn2_tasks(tasks: list[str]) -> list[str]:
    """The second-turn tasks of the study's MT-Bench tasks (``..._zh`` -> ``..._zh_mt``)."""
    out = []
    for task in tasks:
        if m := _MT_TURN1.match(task):
            lang, category = m.groups()
            out.append(group_name(lang, 2) + (f"_{category}" if category else ""))
    return out


def is_mtbench(task: str) -> bool:
    return task.startswith("mtbench_langadapt_")


def eval_runs(
    cfg: StudyConfig,
    model: ModelSpec | str,
    added: Sequence[str] = (),
    retention: Sequence[str] = (),
) -> list[EvalRun]:
    """The model's lm_eval runs. lm_eval's ``--num_fewshot`` applies to every task of a run,
    and MT-Bench has no few-shot examples: with ``num_fewshot`` set, MT-Bench runs apart.
    ``added``: the knowledge tasks the study adds (``study.knowledge``), in a run of their
    own, so that their data appearing or going away never redoes the other runs; the same
    for ``retention``, the English tasks (``study.retention``)."""
    if isinstance(model, str):  # a label: the study's tasks
        model = ModelSpec(model, "")
    tasks = model_tasks(cfg, model)
    out = eval_dir(cfg, model.label)
    mt = [t for t in tasks if is_mtbench(t)]
    other = [t for t in tasks if not is_mtbench(t)]
    if cfg.num_fewshot is not None and mt and other:
        runs = [
            EvalRun("main", out, other, cfg.num_fewshot, {}),
            EvalRun(MTBENCH_DIR, out / MTBENCH_DIR, mt, None, {}),
        ]
    else:
        runs = [EvalRun("main", out, tasks, cfg.num_fewshot if other else None, {})]
    second = turn2_tasks(tasks) if cfg.turn2 else []
    if second:
        # lm-eval builds every prompt before generating: turn 2 is another run that reads
        # the model's own turn-1 answers from the turn-1 run's samples.
        turn1 = runs[-1].folder
        runs.append(EvalRun(TURN2_DIR, out / TURN2_DIR, second, None, {METADATA_TURN1: str(turn1)}))
    if added:
        runs.append(EvalRun(KNOWLEDGE_DIR, out / KNOWLEDGE_DIR, list(added), cfg.num_fewshot, {}))
    return runs + retention_runs(cfg, model, retention) + heldout_runs(cfg, model)


def _model_args(model: ModelSpec) -> str:
    return f"pretrained={model.pretrained}" + (f",peft={model.peft}" if model.peft else "")


def lm_eval_command(cfg: StudyConfig, model: ModelSpec, ev: EvalRun) -> list[str]:
    generation_only = all(is_mtbench(t) for t in ev.tasks)
    backend = model_name(cfg.engine, generation_only, adapter=bool(model.peft))
    model_args = engine_model_args(cfg.engine, model.pretrained, model.peft)
    if backend == SHARED_PREFIX_MODEL and not shares_prefix(cfg.engine, generation_only):
        # Only for the adapter check (check_adapter): every request is scored as by hf.
        model_args += ",shared_prefix=False"
    args = [*launcher(cfg.engine), "--model", backend, "--model_args", model_args]
    args += ["--tasks", ",".join(ev.tasks), "--batch_size", cfg.batch_size]
    args += ["--output_path", str(ev.folder), "--log_samples"]
    # lm-eval's request cache: a crashed evaluation resumes where it stopped.
    args += ["--use_cache", str(ev.folder / "lm_cache" / "requests")]
    if cfg.limit is not None and not ev.heldout:
        args += ["--limit", str(cfg.limit)]
    if ev.num_fewshot is not None:
        args += ["--num_fewshot", str(ev.num_fewshot)]
    if cfg.gen_kwargs and not ev.heldout:
        args += ["--gen_kwargs", cfg.gen_kwargs]
    if cfg.apply_chat_template and not ev.heldout:
        args.append("--apply_chat_template")
    # Generation only: the judge step judges the saved answers (cached, resumable).
    return [*args, "--metadata", json.dumps({"judge": "off", **ev.metadata}), *cfg.lm_eval_args]


def request(cfg: StudyConfig, model: ModelSpec, ev: EvalRun) -> dict[str, Any]:
    """What a finished run must have been asked for to count as done."""
    return {
        "model_args": _model_args(model),
        "tasks": ev.tasks,
        "limit": None if ev.heldout else cfg.limit,
        "num_fewshot": ev.num_fewshot,
        "gen_kwargs": None if ev.heldout else cfg.gen_kwargs,
        "apply_chat_template": cfg.apply_chat_template and not ev.heldout,
        "lm_eval_args": cfg.lm_eval_args,
        "metadata": ev.metadata,
        # hf and langadapt-hf give the same scores (within 1e-4), in any number of
        # processes; another engine's run is another run.
        **({"engine": cfg.engine.name} if cfg.engine.name != "hf" else {}),
    }


@dataclass(frozen=True)
class JudgeCommand:
    """One ``langadapt judge`` call of a model: the languages it judges, with which rubric
    (None: the study's), against which model's answers (a pairwise rubric)."""

    languages: tuple[str, ...]
    rubric: str | None
    args: list[str]
    against: str | None = None  # the baseline's label


def pair_baselines(cfg: StudyConfig, model: ModelSpec) -> list[str]:
    """Whom a pairwise rubric compares the model with: ``report.baseline`` (in the grid, the
    model's own variant of that name) and, when the model has one, its instruct model."""
    grid = cfg.models.get(model.model) or next(iter(cfg.models.values()))
    out = [label(grid.label, cfg.baseline) if cfg.is_grid else cfg.baseline]
    if grid.instruct:
        out.append(label(grid.label, VARIANTS[1]))
    return [b for b in dict.fromkeys(out) if b != model.label]


def judge_commands(
    cfg: StudyConfig, model: ModelSpec, retention: Sequence[str] = ()
) -> list[JudgeCommand]:
    """The model's judge calls: its MT-Bench languages with the study's rubric, English
    (retention, or a task of its own) with FastChat's prompts (``study.retention``)."""
    codes = languages([t for t in [*model_tasks(cfg, model), *retention] if is_mtbench(t)])
    own = tuple(c for c in codes if c != ENGLISH)
    base = [executable("langadapt"), "judge", str(eval_dir(cfg, model.label))]
    tail = ["--allow-unscored"] if cfg.allow_unscored else []
    out = []
    if cfg.judge_single and own:
        out.append(JudgeCommand(own, None, [*base, "--languages", ",".join(own), *tail]))
    if cfg.judge_single and ENGLISH in codes:
        args = [*base, "--languages", ENGLISH, "--rubric", RUBRIC, *tail]
        out.append(JudgeCommand((ENGLISH,), RUBRIC, args))
    for rubric in cfg.pairwise if codes else []:
        for other in pair_baselines(cfg, model):
            args = [*base, "--rubric", rubric, "--against", str(eval_dir(cfg, other))]
            args += ["--languages", ",".join(codes), *tail]
            out.append(JudgeCommand(tuple(codes), rubric, args, other))
    return out
