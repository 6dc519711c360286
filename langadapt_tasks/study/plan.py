"""The study's plan: every step, its exact command, done or to do, and the totals.

A pure function of the config and of what is recorded on disk (finished training runs,
``lm_eval`` completion records, verdicts); it runs and writes nothing.
``langadapt study --plan`` prints it; ``study.run`` executes the same steps.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from langadapt_tasks.benchmarks.mtbench import CATEGORIES
from langadapt_tasks.judge.rejudge import pair_coverage
from langadapt_tasks.judge.rubrics import DEFAULT_RUBRIC
from langadapt_tasks.judge.verdicts import coverage
from langadapt_tasks.study.added import Added
from langadapt_tasks.study.commands import (
    TrainCell,
    eval_dir,
    is_mtbench,
    judge_commands,
    lm_eval_command,
    model_tasks,
    models,
    pair_baselines,
    request,
    train_cells,
    train_command,
    turn2_tasks,
)
from langadapt_tasks.study.config import ModelSpec, StudyConfig, judge_sources
from langadapt_tasks.study.engines import EngineError
from langadapt_tasks.study.knowledge import languages
from langadapt_tasks.study.records import finished
from langadapt_tasks.study.retention import ENGLISH
from langadapt_tasks.study.retention import RUBRIC as RETENTION_RUBRIC
from langadapt_tasks.study.trained import changed_settings
from langadapt_train.outputs import is_finished

# MT-Bench has 80 questions, 10 per category (a language's own question file may differ).
QUESTIONS_PER_CATEGORY = 10
_MT_TASK = re.compile(rf"^mtbench_langadapt_[a-z][a-z0-9]{{1,7}}(?:_({'|'.join(CATEGORIES)}))?$")


@dataclass(frozen=True)
class Step:
    kind: str  # train | evaluate | judge | report
    name: str  # what it is for: a cell, a model's run
    command: tuple[str, ...]  # () where nothing is run (report) or it cannot be known yet
    done: bool
    note: str = ""


@dataclass
class Plan:
    steps: list[Step]
    models: list[ModelSpec]
    training_runs: int = 0
    training_todo: int = 0
    mtbench_answers: dict[int, int] = field(default_factory=dict)  # turn -> answers
    judge_requests: dict[str, int] = field(default_factory=dict)  # rubric -> requests
    multiple_choice: dict[str, int] = field(default_factory=dict)  # task -> models
    unavailable: dict[str, str] = field(default_factory=dict)  # benchmark -> why it is skipped

    def of(self, kind: str) -> list[Step]:
        return [s for s in self.steps if s.kind == kind]


def mtbench_questions(task: str, limit: float | None) -> int:
    """The questions lm_eval asks for a turn-1 MT-Bench task (a language, or one category)."""
    m = _MT_TASK.match(task)
    if m is None:
        return 0
    per = QUESTIONS_PER_CATEGORY
    if limit is not None:  # lm-eval: a count per task, or a share of it (rounded up)
        per = min(per, int(limit) if limit >= 1 else math.ceil(per * limit))
    return per * (1 if m.group(1) else len(CATEGORIES))


def _rubric(cfg: StudyConfig) -> str:
    source = judge_sources()["rubric"][0]
    return str((cfg.judge or {}).get("rubric") or os.environ.get(source) or DEFAULT_RUBRIC.name)


def _train_step(cfg: StudyConfig, cell: TrainCell) -> tuple[Step, int]:
    todo = [p for p in cfg.presets if not is_finished(cell.adapter(cfg, p))]
    presets = todo or cfg.presets
    note = ("to do: " if todo else "done: ") + ", ".join(presets)
    stale = [
        p
        for p in cfg.presets
        if p not in todo and changed_settings(cell.adapter(cfg, p), cell.overrides)
    ]
    if stale:
        note += f"; trained with other settings, the study stops there: {', '.join(stale)}"
    return Step("train", cell.name, tuple(train_command(cfg, cell, presets)), not todo, note), len(
        todo
    )


def _eval_steps(cfg: StudyConfig, model: ModelSpec, added: Added) -> list[Step]:
    steps = []
    for ev in added.runs(model):
        name = model.label + ("" if ev.name == "main" else f" ({ev.name})")
        done = finished(ev, request(cfg, model, ev)) is not None
        try:
            command = tuple(lm_eval_command(cfg, model, ev))
            note = ""
        except EngineError as err:  # vLLM reads the adapter's rank: known once trained
            command, note = (), f"command known once the adapter is trained ({err})"
        steps.append(Step("evaluate", name, command, done, note))
    return steps


def _judge_steps(cfg: StudyConfig, model: ModelSpec, retention: list[str]) -> list[Step]:
    """The model's ``langadapt judge`` calls, one per rubric; done when their languages'
    answers all have verdicts."""
    if cfg.judge is None:
        return []
    folder = eval_dir(cfg, model.label)
    cov = coverage(folder) if folder.is_dir() else {}
    steps = []
    for command in judge_commands(cfg, model, retention):
        name = model.label + (f" ({command.rubric})" if command.rubric else "")
        if command.against is not None:
            state = pair_coverage(
                folder, eval_dir(cfg, command.against), command.rubric or "", command.languages
            )
            done = state.pairs > 0 and (
                state.scored == state.pairs or (cfg.allow_unscored and state.missing == 0)
            )
            steps.append(Step("judge", f"{name} vs {command.against}", tuple(command.args), done))
            continue
        part = [c for g, c in cov.items() if languages([g])[0] in command.languages]
        done = bool(part) and all(
            c.complete or (cfg.allow_unscored and c.missing == 0) for c in part
        )
        steps.append(Step("judge", name, tuple(command.args), done))
    return steps


def build_plan(cfg: StudyConfig, bases: Mapping[str, str], added: Added) -> Plan:
    """The study's steps in the order they run. ``bases``: model label -> its base as the
    commands name it; ``added``: the tasks the study adds (knowledge, retention)."""
    evaluated = models(cfg, bases)
    plan = Plan([], evaluated, unavailable=added.unavailable)
    for cell in train_cells(cfg, bases):
        step, todo = _train_step(cfg, cell)
        plan.steps.append(step)
        plan.training_runs += len(cfg.presets)
        plan.training_todo += todo
    retention = added.retention.tasks
    requests: dict[str, int] = {}
    for model in evaluated:
        extra = added(model)
        plan.steps += _eval_steps(cfg, model, added)
        tasks = [*model_tasks(cfg, model), *retention]
        for task in tasks:
            n = mtbench_questions(task, cfg.limit)
            turns = {1: n, 2: n if cfg.turn2 and turn2_tasks([task]) else 0}
            for turn, count in turns.items():
                plan.mtbench_answers[turn] = plan.mtbench_answers.get(turn, 0) + count
            rubric = RETENTION_RUBRIC if languages([task]) == [ENGLISH] else _rubric(cfg)
            if cfg.judge_single:
                requests[rubric] = requests.get(rubric, 0) + sum(turns.values())
            for pairwise in cfg.pairwise:  # both orders against each baseline
                n_pairs = 2 * sum(turns.values()) * len(pair_baselines(cfg, model))
                requests[pairwise] = requests.get(pairwise, 0) + n_pairs
        for task in [*tasks, *extra]:
            if not is_mtbench(task):
                plan.multiple_choice[task] = plan.multiple_choice.get(task, 0) + 1
    for model in evaluated:
        plan.steps += _judge_steps(cfg, model, retention)
    if cfg.judge is not None:
        plan.judge_requests = {r: n for r, n in requests.items() if n}
    plan.steps.append(Step("report", "report", (), False, str(cfg.output / "report")))
    return plan


def format_plan(cfg: StudyConfig, plan: Plan) -> str:
    """What ``langadapt study --plan`` prints."""
    lines = [f"Plan of {cfg.path} (nothing is run or written):", ""]
    for step in plan.steps:
        state = "done" if step.done else "to do"
        if step.kind == "report":
            state = "always rebuilt"
        head = f"[{state}] {step.kind} {step.name}"
        lines.append(head + (f": {step.note}" if step.note else ""))
        if step.command:
            lines.append("    $ " + shlex.join(step.command))
    evals = plan.of("evaluate")
    todo_evals = sum(not s.done for s in evals)
    lines += [
        "",
        "Totals:",
        f"  training runs: {plan.training_runs} ({plan.training_todo} to do)",
        f"  evaluated models: {len(plan.models)}",
        f"  lm_eval runs: {len(evals)} ({todo_evals} to do)",
    ]
    limit = "every question" if cfg.limit is None else f"limit {cfg.limit} per subject"
    for task, n in plan.multiple_choice.items():
        lines.append(f"  {task}: {n} models ({limit})")
    for name, why in plan.unavailable.items():
        lines.append(f"  {name}: not available ({why}); skipped")
    answers = plan.mtbench_answers
    if sum(answers.values()):
        turn2 = f" + {answers[2]} second turns" if answers.get(2) else ""
        lines.append(f"  MT-Bench answers: {answers.get(1, 0)} first turns{turn2}")
    if cfg.judge is None:
        lines.append("  judge: off (MT-Bench reports language fidelity only)")
    for rubric, n in plan.judge_requests.items():
        judges = plan.of("judge")
        todo = sum(not s.done for s in judges)
        lines.append(
            f"  judge requests, rubric {rubric}: {n} (at most; {todo} of {len(judges)} "
            "models to judge; cached verdicts are not asked again)"
        )
    return "\n".join(lines)
