"""``langadapt study``: train the adapter grid, evaluate, judge, report — one command.

Every step calls a public command (``langadapt-train sweep``, ``lm_eval``,
``langadapt judge``) or ``build_report``, and skips work that is done:

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

import datetime as dt
import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.mtbench import CATEGORIES, METADATA_TURN1, group_name
from langadapt_tasks.judge.verdicts import RESULTS_GLOB, Coverage, coverage
from langadapt_tasks.report import build_report
from langadapt_tasks.study.adapter_check import loglikelihoods, unchanged
from langadapt_tasks.study.config import STEPS, ModelSpec, StudyConfig, judge_sources
from langadapt_tasks.study.engines import (
    SHARED_PREFIX_MODEL,
    executable,
    launcher,
    model_name,
    shares_prefix,
)
from langadapt_tasks.study.engines import model_args as engine_model_args
from langadapt_tasks.study.knowledge import Knowledge, knowledge_tasks
from langadapt_tasks.study.models import materialize
from langadapt_train.outputs import is_finished

Runner = Callable[[list[str], dict[str, str]], int]
TURN2_DIR = "turn2"
MTBENCH_DIR = "mtbench"
KNOWLEDGE_DIR = "knowledge"
SUBRUNS = (MTBENCH_DIR, TURN2_DIR, KNOWLEDGE_DIR)
MARKER = "langadapt_run.json"  # written when lm_eval exited 0 and every task's samples exist
# A turn-1 MT-Bench task: a language's group, or one of its categories.
_MT_TURN1 = re.compile(rf"^mtbench_langadapt_([a-z][a-z0-9]{{1,7}})(?:_({'|'.join(CATEGORIES)}))?$")


class StudyError(RuntimeError):
    """A step failed or cannot run yet; rerunning the study resumes."""


class JudgeIncomplete(StudyError):
    """Some MT-Bench answers have no score after the judge step; the report is still built."""

    def __init__(self, problems: list[str], report: dict[str, Any] | None) -> None:
        super().__init__("judging is not complete:\n  " + "\n  ".join(problems))
        self.problems, self.report = problems, report


def _log(message: str) -> None:
    print(f"[study] {message}", flush=True)


def run_command(args: list[str], env: dict[str, str]) -> int:
    _log("$ " + shlex.join(args))
    return subprocess.run(args, env=env, check=False).returncode


def base_path(cfg: StudyConfig) -> str:
    if cfg.base_model == "smollm2":
        return str(materialize("smollm2"))
    return cfg.base_model


def environment(cfg: StudyConfig, base: str) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.base_model == "smollm2":  # what the SmolLM2 training configs refer to
        env.setdefault("SMOLLM2_DIR", base)
    if cfg.data_dir is not None:
        env["DATA_DIR"] = str(cfg.data_dir)  # absolute: training configs resolve it too
        for var, sub in (
            ("LANGADAPT_CMMLU_DIR", "cmmlu"),
            ("LANGADAPT_MTBENCH_DIR", "mt_bench"),
            ("LANGADAPT_TURKISHMMLU_DIR", "turkishmmlu"),
        ):
            if (cfg.data_dir / sub).is_dir():
                env.setdefault(var, str(cfg.data_dir / sub))
    # The judge's verdict cache lives with the study, so a rerun asks nothing twice.
    env.setdefault("LANGADAPT_JUDGE_CACHE", str(cfg.output / "judge_cache.sqlite"))
    sources = judge_sources()
    for key, value in (cfg.judge or {}).items():  # checked by study.config: no secrets
        env[sources[key][0]] = str(value)
    return env


def adapter_dir(cfg: StudyConfig, preset: str) -> Path:
    return cfg.output / "adapters" / preset


def models(cfg: StudyConfig, base: str) -> list[ModelSpec]:
    out = [ModelSpec("base", base)]
    if cfg.instruct_model:
        out.append(ModelSpec("instruct", cfg.instruct_model))
    out += [ModelSpec(p, base, str(adapter_dir(cfg, p))) for p in cfg.presets]
    out += [ModelSpec(label, base, str(path)) for label, path in cfg.adapters.items()]
    return out


def eval_dir(cfg: StudyConfig, label: str) -> Path:
    return cfg.output / "eval" / label


def turn2_tasks(tasks: list[str]) -> list[str]:
    """The second-turn tasks of the study's MT-Bench tasks (``..._zh`` -> ``..._zh_mt``)."""
    out = []
    for task in tasks:
        if m := _MT_TURN1.match(task):
            lang, category = m.groups()
            out.append(group_name(lang, 2) + (f"_{category}" if category else ""))
    return out


def train(cfg: StudyConfig, base: str, env: dict[str, str], run: Runner) -> None:
    todo = [p for p in cfg.presets if not is_finished(adapter_dir(cfg, p))]
    for preset in cfg.presets:
        if preset not in todo:
            _log(f"train {preset}: done ({adapter_dir(cfg, preset)})")
    if not todo:
        return
    args = [executable("langadapt-train"), "sweep", "--config", str(cfg.train_config)]
    args += ["--presets", ",".join(todo), "--output_dir", str(cfg.output / "adapters")]
    args += ["--model_name_or_path", base]
    for key, value in cfg.train_overrides.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            args += [flag, str(value)]
    if run(args, env) != 0:
        raise StudyError("training failed; rerun the study to resume from the last checkpoint")


@dataclass(frozen=True)
class EvalRun:
    """One ``lm_eval`` run of a model: its folder, tasks and few-shot setting."""

    name: str  # "main", "mtbench" (MT-Bench apart from num_fewshot) or "turn2"
    folder: Path
    tasks: list[str]
    num_fewshot: int | None
    metadata: dict[str, str]


def is_mtbench(task: str) -> bool:
    return task.startswith("mtbench_langadapt_")


def eval_runs(cfg: StudyConfig, label: str, added: Sequence[str] = ()) -> list[EvalRun]:
    """The model's lm_eval runs. lm_eval's ``--num_fewshot`` applies to every task of a run,
    and MT-Bench has no few-shot examples: with ``num_fewshot`` set, MT-Bench runs apart.
    ``added``: the knowledge tasks the study adds (``study.knowledge``), in a run of their
    own, so that their data appearing or going away never redoes the other runs."""
    out = eval_dir(cfg, label)
    mt = [t for t in cfg.tasks if is_mtbench(t)]
    other = [t for t in cfg.tasks if not is_mtbench(t)]
    if cfg.num_fewshot is not None and mt and other:
        runs = [
            EvalRun("main", out, other, cfg.num_fewshot, {}),
            EvalRun(MTBENCH_DIR, out / MTBENCH_DIR, mt, None, {}),
        ]
    else:
        runs = [EvalRun("main", out, list(cfg.tasks), cfg.num_fewshot if other else None, {})]
    second = turn2_tasks(cfg.tasks) if cfg.turn2 else []
    if second:
        # lm-eval builds every prompt before generating: turn 2 is another run that reads
        # the model's own turn-1 answers from the turn-1 run's samples.
        turn1 = runs[-1].folder
        runs.append(EvalRun(TURN2_DIR, out / TURN2_DIR, second, None, {METADATA_TURN1: str(turn1)}))
    if added:
        runs.append(EvalRun(KNOWLEDGE_DIR, out / KNOWLEDGE_DIR, list(added), cfg.num_fewshot, {}))
    return runs


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
    if cfg.limit is not None:
        args += ["--limit", str(cfg.limit)]
    if ev.num_fewshot is not None:
        args += ["--num_fewshot", str(ev.num_fewshot)]
    if cfg.gen_kwargs:
        args += ["--gen_kwargs", cfg.gen_kwargs]
    if cfg.apply_chat_template:
        args.append("--apply_chat_template")
    # Generation only: the judge step judges the saved answers (cached, resumable).
    return [*args, "--metadata", json.dumps({"judge": "off", **ev.metadata}), *cfg.lm_eval_args]


def _request(cfg: StudyConfig, model: ModelSpec, ev: EvalRun) -> dict[str, Any]:
    """What a finished run must have been asked for to count as done."""
    return {
        "model_args": _model_args(model),
        "tasks": ev.tasks,
        "limit": cfg.limit,
        "num_fewshot": ev.num_fewshot,
        "gen_kwargs": cfg.gen_kwargs,
        "apply_chat_template": cfg.apply_chat_template,
        "lm_eval_args": cfg.lm_eval_args,
        "metadata": ev.metadata,
        # hf and langadapt-hf give the same scores (within 1e-4), in any number of
        # processes; another engine's run is another run.
        **({"engine": cfg.engine.name} if cfg.engine.name != "hf" else {}),
    }


def _own_results(ev: EvalRun) -> set[Path]:
    """The run's results files (a sub-run's folder inside it is not part of it)."""
    out = set()
    for path in ev.folder.rglob(RESULTS_GLOB):
        parts = path.relative_to(ev.folder).parts
        if ev.name != "main" or parts[0] not in SUBRUNS:
            out.add(path)
    return out


def read_marker(ev: EvalRun) -> dict[str, Any] | None:
    try:
        data = json.loads((ev.folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finished(ev: EvalRun, request: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The run's completion record when it finished (for ``request``) and its files exist."""
    marker = read_marker(ev)
    if marker is None or (request is not None and marker.get("request") != request):
        return None
    files = [marker.get("results"), *(marker.get("samples") or {})]
    if not all(isinstance(f, str) and (ev.folder / f).is_file() for f in files):
        return None
    return marker


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _record(ev: EvalRun, label: str, before: set[Path], request: dict[str, Any]) -> dict[str, Any]:
    """Check what lm_eval wrote (results, every task's samples): the run's completion record,
    written by ``_mark_done``."""
    what = f"evaluate {label}" + ("" if ev.name == "main" else f" ({ev.name})")
    new = sorted(_own_results(ev) - before)
    if len(new) != 1:
        raise StudyError(
            f"{what}: lm_eval exited 0 but wrote {len(new)} results files in {ev.folder}; "
            "rerun the study to redo it"
        )
    results = new[0]
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StudyError(f"{what}: {results} unreadable ({err}); rerun the study") from err
    stamp = results.name.removeprefix("results_").removesuffix(".json")
    known = set(data.get("results") or {}) | set(data.get("groups") or {})
    known |= set(data.get("configs") or {})
    if missing := [t for t in ev.tasks if t not in known]:
        raise StudyError(f"{what}: {results} has no results for {', '.join(missing)}")
    samples: dict[str, int] = {}
    for task in data.get("configs") or {}:
        path = results.parent / f"samples_{task}_{stamp}.jsonl"
        want = ((data.get("n-samples") or {}).get(task) or {}).get("effective")
        got = _count_lines(path) if path.is_file() else None
        if got is None or (isinstance(want, int) and got != want):
            found = "missing" if got is None else f"{got} of {want} samples"
            raise StudyError(
                f"{what}: lm_eval exited 0 but {path} is {found}; rerun the study to redo it"
            )
        samples[str(path.relative_to(ev.folder))] = got
    return {
        "request": request,
        "results": str(results.relative_to(ev.folder)),
        "samples": samples,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _mark_done(ev: EvalRun, marker: dict[str, Any]) -> None:
    tmp = ev.folder / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, indent=2), encoding="utf-8")
    tmp.replace(ev.folder / MARKER)


def evaluate(
    cfg: StudyConfig,
    model: ModelSpec,
    env: dict[str, str],
    run: Runner,
    added: Sequence[str] = (),
) -> None:
    runs = eval_runs(cfg, model.label, added)
    if cfg.num_fewshot is not None and any(is_mtbench(t) for t in cfg.tasks):
        _log(
            f"evaluate {model.label}: num_fewshot {cfg.num_fewshot} applies to the "
            "multiple-choice tasks only (MT-Bench has no few-shot examples)"
        )
    for ev in runs:
        what = f"evaluate {model.label}" + ("" if ev.name == "main" else f" {ev.name}")
        request = _request(cfg, model, ev)
        if finished(ev, request) is not None:
            _log(f"{what}: done ({ev.folder})")
            continue
        if read_marker(ev) is not None:
            _log(f"{what}: the recorded run was asked for other settings or lost files; redoing")
        if model.peft and not Path(model.peft, "adapter_config.json").is_file():
            raise StudyError(f"evaluate {model.label}: no adapter in {model.peft}; train it first")
        ev.folder.mkdir(parents=True, exist_ok=True)
        (ev.folder / MARKER).unlink(missing_ok=True)
        before = _own_results(ev)
        if run(lm_eval_command(cfg, model, ev), env) != 0:
            raise StudyError(f"{what} failed; rerun the study to resume")
        marker = _record(ev, model.label, before, request)
        if model.peft:
            _check_applied(cfg, model, ev, marker, added)
        _mark_done(ev, marker)


def _check_applied(
    cfg: StudyConfig, model: ModelSpec, ev: EvalRun, marker: dict[str, Any], added: Sequence[str]
) -> None:
    """Stop when the adapter's run gave the base model's log-likelihoods on every shared
    request (the adapter was not applied); nothing is recorded, so a rerun redoes it."""
    base = ModelSpec("base", model.pretrained)
    same = [b for b in eval_runs(cfg, base.label, added) if b.name == ev.name]
    base_marker = finished(same[0], _request(cfg, base, same[0])) if same else None
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


def judge(cfg: StudyConfig, model: ModelSpec, env: dict[str, str], run: Runner) -> str | None:
    """Judge the model's answers until every one is scored; the problem, when some are not."""
    out = eval_dir(cfg, model.label)
    cov = coverage(out) if out.is_dir() else {}
    if not cov:
        _log(f"judge {model.label}: no MT-Bench answers, nothing to judge")
        return None
    done, answers, unscored, missing = _judge_state(cov, cfg.allow_unscored)
    if done:
        accepted = f"; {unscored} unscored, accepted (judge.allow_unscored)" if unscored else ""
        _log(f"judge {model.label}: done ({answers} answers{accepted})")
        return None
    _log(f"judge {model.label}: {_describe(answers, unscored, missing)}; judging")
    args = [executable("langadapt"), "judge", str(out)]
    if cfg.allow_unscored:
        args.append("--allow-unscored")
    code = run(args, env)
    if code not in (0, 1):  # 1: some answers stay unscored, checked below
        raise StudyError(
            f"judge {model.label} failed (exit {code}): see the message above; fix the judge "
            "settings and rerun the study (scored verdicts are cached)"
        )
    done, answers, unscored, missing = _judge_state(coverage(out), cfg.allow_unscored)
    if done:
        return None
    problem = (
        f"{model.label}: {_describe(answers, unscored, missing)}. Rerun the study when the "
        "judge answers (only these are asked again), or accept them with "
        "judge.allow_unscored: true"
    )
    _log(f"judge {problem}")
    return problem


def report_inputs(
    cfg: StudyConfig, plan: list[ModelSpec], added: Sequence[str] = ()
) -> dict[str, list[Path]]:
    """label -> the results files of the model's finished runs."""
    out: dict[str, list[Path]] = {}
    for model in plan:
        files = []
        for ev in eval_runs(cfg, model.label, added):
            marker = finished(ev, _request(cfg, model, ev))
            if marker is not None:
                files.append(ev.folder / marker["results"])
        if files:
            out[model.label] = files
    return out


def run_study(
    cfg: StudyConfig, steps: Sequence[str] = STEPS, run: Runner = run_command
) -> dict | None:
    """Run ``steps`` of the study; return the report summary when the report step ran."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; steps: {', '.join(STEPS)}")
    cfg.output.mkdir(parents=True, exist_ok=True)
    base = base_path(cfg)
    env = environment(cfg, base)
    plan = models(cfg, base)
    if "train" in steps and cfg.presets:
        train(cfg, base, env, run)
    knowledge = Knowledge()
    if "evaluate" in steps or "report" in steps:
        knowledge = knowledge_tasks(cfg.tasks, env)
        for task in knowledge.added:
            _log(f"evaluate: adding {task} (the multiple-choice task of a study language)")
        for name, why in knowledge.unavailable.items():
            _log(f"evaluate: {name} not available ({why}); skipped")
    if "evaluate" in steps:
        for model in plan:
            evaluate(cfg, model, env, run, knowledge.added)
    problems: list[str] = []
    if "judge" in steps:
        if cfg.judge is None:
            _log("judge: off (MT-Bench reports fidelity only)")
        else:
            problems = [p for model in plan if (p := judge(cfg, model, env, run))]
    report = None
    if "report" in steps:
        report = _report(cfg, plan, knowledge)
    if problems:
        raise JudgeIncomplete(problems, report)
    return report


def _report(cfg: StudyConfig, plan: list[ModelSpec], knowledge: Knowledge) -> dict[str, Any]:
    inputs = report_inputs(cfg, plan, knowledge.added)
    if not inputs:
        raise StudyError("no model has been evaluated yet: nothing to report")
    labels = list(inputs)
    baseline = cfg.baseline if cfg.baseline in labels else labels[0]
    report = build_report(
        [path for files in inputs.values() for path in files],
        cfg.output / "report",
        names=[label for label, files in inputs.items() for _ in files],
        baseline=baseline,
        title=f"langadapt study: {cfg.path.name}",
        unavailable=knowledge.unavailable,
    )
    for model in plan:
        if model.label not in inputs:
            report["notes"].append(f"{model.label}: not evaluated yet (no finished run)")
    _log(f"report: {cfg.output / 'report' / 'report.md'}")
    return report
