"""``langadapt study``: train the adapter grid, evaluate, judge, report — one command.

The steps and their commands are the plan's (``study.plan``; ``langadapt study --plan``
prints it): per (model, language) cell one sweep, per evaluated model its ``lm_eval``
runs and its judging, then the report. Every step calls a public command
(``langadapt-train sweep``, ``lm_eval``, ``langadapt judge``) or ``build_report``, and
skips work that is done:

* train: presets with a finished run are skipped by the sweep itself; an
  interrupted preset resumes from its last checkpoint;
* evaluate: the multiple-choice task of each language of the MT-Bench tasks (its
  spec's ``multiple_choice``) is added when ``evaluate.tasks`` lacks it and its data
  can be loaded (``study.knowledge``; else skipped, the report says "not available"),
  in a run of its own (``eval/<label>/knowledge/``). An ``lm_eval`` run is done
  when its folder holds ``langadapt_run.json``,
  written after lm_eval exited 0 and every task's samples were found, for the same
  settings; anything else is run again (lm-eval's request cache, ``--use_cache``,
  answers what was computed). With ``num_fewshot`` set, MT-Bench (no few-shot
  examples) runs apart (``eval/<label>/mtbench/``); with ``turn2``, another run
  (``eval/<label>/turn2/``) answers MT-Bench's second turns;
* judge: done when every answer has a scored verdict (``judge.allow_unscored``:
  a verdict, scored or not); else ``langadapt judge`` asks for what has none
  (scored verdicts are cached) and the study ends with exit 1 if some stay unscored;
* report: always rebuilt (cheap), from the recorded runs only.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.heldout import METADATA_FILE
from langadapt_tasks.judge.rejudge import PairCoverage, pair_coverage
from langadapt_tasks.judge.verdicts import Coverage, coverage
from langadapt_tasks.report import Identity, build_report
from langadapt_tasks.study.adapter_check import loglikelihoods, unchanged
from langadapt_tasks.study.added import Added
from langadapt_tasks.study.commands import (
    EvalRun,
    JudgeCommand,
    TrainCell,
    eval_dir,
    eval_runs,
    is_mtbench,
    judge_commands,
    lm_eval_command,
    model_tasks,
    models,
    request,
    train_cells,
    train_command,
)
from langadapt_tasks.study.config import STEPS, ModelSpec, StudyConfig, judge_sources
from langadapt_tasks.study.engines import model_name
from langadapt_tasks.study.grid import label
from langadapt_tasks.study.knowledge import languages
from langadapt_tasks.study.models import default_dir, materialize
from langadapt_tasks.study.plan import Plan, build_plan
from langadapt_tasks.study.records import (
    MARKER,
    StudyError,
    finished,
    mark_done,
    own_results,
    read_marker,
    record,
)
from langadapt_tasks.study.tokenizer_cost import cost_table
from langadapt_tasks.study.trained import changed_settings
from langadapt_train.outputs import is_finished

Runner = Callable[[list[str], dict[str, str]], int]
EMBEDDED = "smollm2"  # a base model named so is the embedded SmolLM2 (study.models)


class JudgeIncomplete(StudyError):
    """Some MT-Bench answers have no score after the judge step; the report is still built."""

    def __init__(self, problems: list[str], report: dict[str, Any] | None) -> None:
        super().__init__("judging is not complete:\n  " + "\n  ".join(problems))
        self.problems, self.report = problems, report


def _log(message: str) -> None:
    print(f"[study] {message}", flush=True)


def run_command(args: list[str], env: dict[str, str]) -> int:
    """Run one command in a process of its own."""
    return subprocess.run(args, env=env, check=False).returncode


def bases(cfg: StudyConfig, convert: bool = True) -> dict[str, str]:
    """Model label -> its base as the commands name it. The embedded model is converted
    first (``convert``) or only named (the plan, which writes nothing)."""
    out = {m.label: m.base for m in cfg.models.values()}
    if EMBEDDED in out.values():
        embedded = str(materialize(EMBEDDED) if convert else default_dir(EMBEDDED))
        out = {name: embedded if base == EMBEDDED else base for name, base in out.items()}
    return out


def environment(cfg: StudyConfig, base: str) -> dict[str, str]:
    """The commands' environment; ``base``: the embedded model's folder, when used."""
    env = dict(os.environ)
    if any(m.base == EMBEDDED for m in cfg.models.values()):  # the SmolLM2 configs use it
        env.setdefault("SMOLLM2_DIR", base)
    if cfg.data_dir is not None:
        env["DATA_DIR"] = str(cfg.data_dir)  # absolute: training configs resolve it too
        for var, sub in (
            ("LANGADAPT_CMMLU_DIR", "cmmlu"),
            ("LANGADAPT_MTBENCH_DIR", "mt_bench"),
            ("LANGADAPT_TURKISHMMLU_DIR", "turkishmmlu"),
            ("LANGADAPT_MMLU_DIR", "mmlu"),
        ):
            if (cfg.data_dir / sub).is_dir():
                env.setdefault(var, str(cfg.data_dir / sub))
    # The judge's verdict cache lives with the study, so a rerun asks nothing twice.
    env.setdefault("LANGADAPT_JUDGE_CACHE", str(cfg.output / "judge_cache.sqlite"))
    sources = judge_sources()
    for key, value in (cfg.judge or {}).items():  # checked by study.config: no secrets
        env[sources[key][0]] = str(value)
    return env


def train(cfg: StudyConfig, cell: TrainCell, env: dict[str, str], run: Runner) -> None:
    """Train the cell's presets that have no finished run (one sweep)."""
    todo = [p for p in cfg.presets if not is_finished(cell.adapter(cfg, p))]
    for preset in cfg.presets:
        if preset not in todo:
            adapter = cell.adapter(cfg, preset)
            if changed := changed_settings(adapter, cell.overrides):
                raise StudyError(
                    f"train {label(cell.name, preset)}: {adapter} was trained with other "
                    f"settings ({'; '.join(changed)}). Delete that folder to train it with "
                    "the study's settings, or set them back; nothing was deleted"
                )
            _log(f"train {label(cell.name, preset)}: done ({adapter})")
    if todo and run(train_command(cfg, cell, todo), env) != 0:
        raise StudyError(
            f"training {cell.name} failed; rerun the study to resume from the last checkpoint"
        )


def evaluate(
    cfg: StudyConfig,
    model: ModelSpec,
    env: dict[str, str],
    run: Runner,
    added: Added | None = None,
) -> None:
    runs = added.runs(model) if added is not None else eval_runs(cfg, model)
    if cfg.num_fewshot is not None and any(is_mtbench(t) for t in model_tasks(cfg, model)):
        _log(
            f"evaluate {model.label}: num_fewshot {cfg.num_fewshot} applies to the "
            "multiple-choice tasks only (MT-Bench has no few-shot examples)"
        )
    for ev in runs:
        what = f"evaluate {model.label}" + ("" if ev.name == "main" else f" {ev.name}")
        asked = request(cfg, model, ev)
        if finished(ev, asked) is not None:
            _log(f"{what}: done ({ev.folder})")
            continue
        if read_marker(ev) is not None:
            _log(f"{what}: the recorded run was asked for other settings or lost files; redoing")
        if model.peft and not Path(model.peft, "adapter_config.json").is_file():
            raise StudyError(f"evaluate {model.label}: no adapter in {model.peft}; train it first")
        rows = ev.metadata.get(METADATA_FILE)
        if rows and not Path(rows).is_file():  # written by training, which has not run
            _log(f"{what}: no held-out rows yet ({rows}: train first); skipped")
            continue
        ev.folder.mkdir(parents=True, exist_ok=True)
        (ev.folder / MARKER).unlink(missing_ok=True)
        before = own_results(ev)
        if run(lm_eval_command(cfg, model, ev), env) != 0:
            raise StudyError(f"{what} failed; rerun the study to resume")
        marker = record(ev, model.label, before, asked)
        if model.peft:
            _check_applied(cfg, model, ev, marker, added)
        mark_done(ev, marker)


def _check_applied(
    cfg: StudyConfig, model: ModelSpec, ev: EvalRun, marker: dict[str, Any], added: Added | None
) -> None:
    """Stop when the adapter's run gave the base model's log-likelihoods on every shared
    request (the adapter was not applied); nothing is recorded, so a rerun redoes it. The
    base model's run of the same name is read from its completion record."""
    base = ModelSpec(label(model.model, "base"), model.pretrained, model=model.model)
    runs = added.runs(base) if added is not None else eval_runs(cfg, base)
    same = [b for b in runs if b.name == ev.name]
    base_marker = read_marker(same[0]) if same else None
    if base_marker is not None:
        base_marker = finished(same[0], base_marker.get("request"))
    if base_marker is None:
        return  # the base model's run of these tasks is not there to compare with
    n = unchanged(
        loglikelihoods(ev.folder, marker["samples"]),
        loglikelihoods(same[0].folder, base_marker["samples"]),
    )
    if n:
        backend = model_name(cfg.engine, False, adapter=True)
        raise StudyError(
            f"evaluate {model.label}: all {n} log-likelihoods equal the base model's "
            f"({same[0].folder}), so the adapter {model.peft} was not applied (--model "
            f"{backend}) and its scores would be the base model's. Check that the adapter was "
            "trained and that the engine applies it (vLLM: max_lora_rank, target modules it "
            "supports), then rerun the study"
        )


def _judge_state(cov: dict[str, Coverage], allow_unscored: bool) -> tuple[bool, int, int, int]:
    answers = sum(c.answers for c in cov.values())
    unscored = sum(c.unscored for c in cov.values())
    missing = sum(c.missing for c in cov.values())
    done = all(c.complete for c in cov.values()) or (
        allow_unscored and missing == 0 and answers > 0
    )
    return done, answers, unscored, missing


def _describe(answers: int, unscored: int, missing: int) -> str:
    parts = [f"{unscored} unscored by the judge"] if unscored else []
    parts += [f"{missing} not judged yet"] if missing else []
    return (
        f"{unscored + missing} of {answers} MT-Bench answers without a score ({', '.join(parts)})"
    )


def _pairs_done(cfg: StudyConfig, cov: PairCoverage) -> bool:
    return cov.pairs > 0 and (cov.scored == cov.pairs or (cfg.allow_unscored and cov.missing == 0))


def judge(
    cfg: StudyConfig,
    model: ModelSpec,
    env: dict[str, str],
    run: Runner,
    retention: Sequence[str] = (),
) -> str | None:
    """Judge the model's answers until every one is scored; the problem, when some are not.
    One ``langadapt judge`` per rubric (``judge_commands``; a pairwise rubric per baseline),
    each only while its languages have answers (or pairs) without a verdict."""
    out = eval_dir(cfg, model.label)
    commands = judge_commands(cfg, model, retention)
    singles = [c for c in commands if c.against is None]
    cov = coverage(out) if out.is_dir() and singles else {}
    pair_commands = [c for c in commands if c.against is not None]

    def pair_state(command: JudgeCommand) -> PairCoverage:
        other = eval_dir(cfg, command.against or "")
        return pair_coverage(out, other, command.rubric or "", command.languages)

    states = [pair_state(c) for c in pair_commands]  # each reads both models' samples: once
    if not cov and not any(state.pairs for state in states):
        _log(f"judge {model.label}: no MT-Bench answers, nothing to judge")
        return None
    done, answers, unscored, missing = (
        _judge_state(cov, cfg.allow_unscored) if cov else (True, 0, 0, 0)
    )
    todo = [
        c for c, state in zip(pair_commands, states, strict=True) if not _pairs_done(cfg, state)
    ]
    if done and not todo:
        accepted = f"; {unscored} unscored, accepted (judge.allow_unscored)" if unscored else ""
        _log(f"judge {model.label}: done ({answers} answers{accepted})")
        return None
    if not done:
        _log(f"judge {model.label}: {_describe(answers, unscored, missing)}; judging")
    for command in commands:
        if command.against is None:
            part = {g: c for g, c in cov.items() if languages([g])[0] in command.languages}
            if not part or _judge_state(part, cfg.allow_unscored)[0]:
                continue
        elif command not in todo:
            continue
        code = run(command.args, env)
        if code not in (0, 1):  # 1: some answers stay unscored, checked below
            raise StudyError(
                f"judge {model.label} failed (exit {code}): see the message above; fix the "
                "judge settings and rerun the study (scored verdicts are cached)"
            )
    problems = []
    if cov:
        done, answers, unscored, missing = _judge_state(coverage(out), cfg.allow_unscored)
        if not done:
            problems.append(_describe(answers, unscored, missing))
    for command in todo:
        state = pair_state(command)
        if not _pairs_done(cfg, state):
            problems.append(
                f"{state.pairs - state.scored} of {state.pairs} pairs against "
                f"{command.against} ({command.rubric}) without a verdict"
            )
    if not problems:
        return None
    problem = (
        f"{model.label}: {'; '.join(problems)}. Rerun the study when the judge answers (only "
        "these are asked again), or accept them with judge.allow_unscored: true"
    )
    _log(f"judge {problem}")
    return problem


def report_inputs(
    cfg: StudyConfig, evaluated: list[ModelSpec], added: Added | None = None
) -> dict[str, list[Path]]:
    """label -> the results files of the model's finished runs."""
    out: dict[str, list[Path]] = {}
    for model in evaluated:
        files = []
        for ev in added.runs(model) if added else eval_runs(cfg, model):
            marker = finished(ev, request(cfg, model, ev))
            if marker is not None:
                files.append(ev.folder / marker["results"])
        if files:
            out[model.label] = files
    return out


def plan_study(cfg: StudyConfig) -> Plan:
    """The study's plan, without running, converting or writing anything."""
    named = bases(cfg, convert=False)
    env = environment(cfg, next(iter(named.values())))
    return build_plan(cfg, named, Added(cfg, env))


def run_study(
    cfg: StudyConfig, steps: Sequence[str] = STEPS, run: Runner | None = None
) -> dict | None:
    """Run ``steps`` of the study; return the report summary when the report step ran.
    ``run`` runs one command (default: :func:`run_command`, each in a process of its own);
    each command is printed before it runs."""
    execute = run or run_command

    def run(args: list[str], env: dict[str, str]) -> int:
        _log("$ " + shlex.join(args))
        return execute(args, env)

    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; steps: {', '.join(STEPS)}")
    cfg.output.mkdir(parents=True, exist_ok=True)
    named = bases(cfg)
    embedded = next((b for m, b in named.items() if cfg.models[m].base == EMBEDDED), "")
    env = environment(cfg, embedded)
    evaluated = models(cfg, named)
    if "train" in steps:
        for cell in train_cells(cfg, named):
            train(cfg, cell, env, run)
    added: Added | None = None
    if "evaluate" in steps or "report" in steps:
        added = Added(cfg, env)
        for task in added.all.added:
            _log(f"evaluate: adding {task} (the multiple-choice task of a study language)")
        for task in added.retention.tasks:
            _log(f"evaluate: adding {task} (English retention, every model)")
        for name, why in added.unavailable.items():
            _log(f"evaluate: {name} not available ({why}); skipped")
    if "evaluate" in steps:
        for model in evaluated:
            evaluate(cfg, model, env, run, added)
    problems: list[str] = []
    if "judge" in steps:
        if cfg.judge is None:
            _log("judge: off (MT-Bench reports fidelity only)")
        else:
            retention = (added or Added(cfg, env)).retention.tasks
            problems = [p for model in evaluated if (p := judge(cfg, model, env, run, retention))]
    report = None
    if "report" in steps:
        report = _report(cfg, evaluated, added or Added(cfg, env), named, env)
    if problems:
        raise JudgeIncomplete(problems, report)
    return report


def identities(
    cfg: StudyConfig, evaluated: list[ModelSpec], labels: Sequence[str]
) -> dict[str, Identity]:
    """Each reported model's place in the grid; ``base_model`` as the config names it (a
    Hub id matches the published tables), for the instruct model too."""
    first = next(iter(cfg.models))
    out = {}
    for model in evaluated:
        if model.label in labels:
            grid_model = cfg.models.get(model.model) or cfg.models[first]
            variant = model.variant or model.label
            out[model.label] = Identity(
                model.label, model.model, grid_model.base, variant, model.language
            )
    return out


def _report(
    cfg: StudyConfig,
    evaluated: list[ModelSpec],
    added: Added,
    named: dict[str, str],
    env: dict[str, str],
) -> dict[str, Any]:
    inputs = report_inputs(cfg, evaluated, added)
    if not inputs:
        raise StudyError("no model has been evaluated yet: nothing to report")
    labels = list(inputs)
    baseline = cfg.baseline if cfg.baseline in labels else labels[0]
    if cfg.is_grid and cfg.baseline not in labels:  # a variant: the first model's own
        first = label(next(iter(cfg.models)), cfg.baseline)
        baseline = first if first in labels else baseline
    cost = cost_table(cfg, named, env.get("LANGADAPT_MTBENCH_DIR"))
    # The grid's layout (per model and language) and the published figures need to know
    # which model, variant and language each label is.
    laid_out = cfg.is_grid or cfg.compare is not None
    report = build_report(
        [path for files in inputs.values() for path in files],
        cfg.output / "report",
        names=[name for name, files in inputs.items() for _ in files],
        baseline=baseline,
        title=f"langadapt study: {cfg.path.name}",
        unavailable=added.unavailable,
        identities=identities(cfg, evaluated, inputs) if laid_out else None,
        compare=cfg.compare,
        extra=[("Tokenizer cost", [t for t in [cost] if t is not None])],
    )
    for model in evaluated:
        if model.label not in inputs:
            report["notes"].append(f"{model.label}: not evaluated yet (no finished run)")
    _log(f"report: {cfg.output / 'report' / 'report.md'}")
    return report
