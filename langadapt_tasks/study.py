"""``langadapt study``: train the adapter grid, evaluate, judge, report — one command.

Every step calls a public command (``langadapt-train sweep``, ``lm_eval``,
``langadapt judge``) or ``build_report``, and skips work that is done:

* train: presets with a finished run are skipped by the sweep itself; an
  interrupted preset resumes from its last checkpoint;
* evaluate: a model whose output folder holds a ``results_*.json`` is done;
  an interrupted evaluation resumes from lm-eval's request cache (``--use_cache``);
  with ``turn2``, a second run (``eval/<label>/turn2/``) answers MT-Bench's second
  turns after the model's own first answers;
* judge: a model whose folder holds verdict files newer than its results is
  done; verdicts are cached (SQLite), so a resumed judge asks nothing twice;
* report: always rebuilt (cheap).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from langadapt_tasks.mtbench_data import CATEGORIES, METADATA_TURN1
from langadapt_tasks.mtbench_task import group_name
from langadapt_tasks.study_config import STEPS, ModelSpec, StudyConfig

Runner = Callable[[list[str], dict[str, str]], int]
TURN2_DIR = "turn2"
# A turn-1 MT-Bench task: a language's group, or one of its categories.
_MT_TURN1 = re.compile(rf"^mtbench_langadapt_([a-z][a-z0-9]{{1,7}})(?:_({'|'.join(CATEGORIES)}))?$")


class StudyError(RuntimeError):
    """A step failed or cannot run yet; rerunning the study resumes."""


def _log(message: str) -> None:
    print(f"[study] {message}", flush=True)


def run_command(args: list[str], env: dict[str, str]) -> int:
    _log("$ " + shlex.join(args))
    return subprocess.run(args, env=env, check=False).returncode


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def base_path(cfg: StudyConfig) -> str:
    if cfg.base_model == "smollm2":
        from langadapt_tasks.models import materialize

        return str(materialize("smollm2"))
    return cfg.base_model


def environment(cfg: StudyConfig, base: str) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.base_model == "smollm2":  # what the SmolLM2 training configs refer to
        env.setdefault("SMOLLM2_DIR", base)
    if cfg.data_dir is not None:
        env["DATA_DIR"] = str(cfg.data_dir)  # absolute: training configs resolve it too
        for var, sub in (("LANGADAPT_CMMLU_DIR", "cmmlu"), ("LANGADAPT_MTBENCH_DIR", "mt_bench")):
            if (cfg.data_dir / sub).is_dir():
                env.setdefault(var, str(cfg.data_dir / sub))
    # The judge's verdict cache lives with the study, so a rerun asks nothing twice.
    env.setdefault("LANGADAPT_JUDGE_CACHE", str(cfg.output / "judge_cache.sqlite"))
    for key, value in (cfg.judge or {}).items():
        if key in ("api_key", "key"):
            raise ValueError("the judge's API key comes from OPENAI_API_KEY only, not the config")
        env[f"LANGADAPT_JUDGE_{key.upper()}"] = str(value)
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


def _newest(folder: Path, pattern: str, skip: str | None = None) -> float | None:
    times = [
        p.stat().st_mtime
        for p in folder.rglob(pattern)
        if skip is None or skip not in p.relative_to(folder).parts
    ]
    return max(times) if times else None


def turn2_tasks(tasks: list[str]) -> list[str]:
    """The second-turn tasks of the study's MT-Bench tasks (``..._zh`` -> ``..._zh_mt``)."""
    out = []
    for task in tasks:
        if m := _MT_TURN1.match(task):
            lang, category = m.groups()
            out.append(group_name(lang, 2) + (f"_{category}" if category else ""))
    return out


def train(cfg: StudyConfig, base: str, env: dict[str, str], run: Runner) -> None:
    from langadapt_train.trainer import is_finished

    todo = [p for p in cfg.presets if not is_finished(adapter_dir(cfg, p))]
    for preset in cfg.presets:
        if preset not in todo:
            _log(f"train {preset}: done ({adapter_dir(cfg, preset)})")
    if not todo:
        return
    args = [_bin("langadapt-train"), "sweep", "--config", str(cfg.train_config)]
    args += ["--presets", ",".join(todo), "--output", str(cfg.output / "adapters")]
    args += ["--model", base]
    for key, value in cfg.train_overrides.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            args += [flag, str(value)]
    if run(args, env) != 0:
        raise StudyError("training failed; rerun the study to resume from the last checkpoint")


def _lm_eval(
    cfg: StudyConfig, model: ModelSpec, tasks: list[str], out: Path, metadata: dict[str, str]
) -> list[str]:
    model_args = f"pretrained={model.pretrained}" + (f",peft={model.peft}" if model.peft else "")
    args = [_bin("lm_eval"), "--model", "hf", "--model_args", model_args]
    args += ["--tasks", ",".join(tasks), "--batch_size", cfg.batch_size]
    args += ["--output_path", str(out), "--log_samples"]
    # lm-eval's request cache: a crashed evaluation resumes where it stopped.
    args += ["--use_cache", str(out / "lm_cache" / "requests")]
    if cfg.limit is not None:
        args += ["--limit", str(cfg.limit)]
    if cfg.num_fewshot is not None and METADATA_TURN1 not in metadata:
        args += ["--num_fewshot", str(cfg.num_fewshot)]  # turn 2's one shot is turn 1
    if cfg.gen_kwargs:
        args += ["--gen_kwargs", cfg.gen_kwargs]
    if cfg.apply_chat_template:
        args.append("--apply_chat_template")
    # Generation only: the judge step judges the saved answers (cached, resumable).
    return [*args, "--metadata", json.dumps({"judge": "off", **metadata}), *cfg.lm_eval_args]


def evaluate(cfg: StudyConfig, model: ModelSpec, env: dict[str, str], run: Runner) -> None:
    out = eval_dir(cfg, model.label)
    if _newest(out, "results_*.json", skip=TURN2_DIR) is not None:
        _log(f"evaluate {model.label}: done ({out})")
    else:
        if model.peft and not Path(model.peft, "adapter_config.json").is_file():
            raise StudyError(f"evaluate {model.label}: no adapter in {model.peft}; train it first")
        out.mkdir(parents=True, exist_ok=True)
        if run(_lm_eval(cfg, model, cfg.tasks, out, {}), env) != 0:
            raise StudyError(f"evaluate {model.label} failed; rerun the study to resume")
    second = turn2_tasks(cfg.tasks) if cfg.turn2 else []
    if not second:
        return
    # lm-eval builds every prompt before generating: turn 2 is a second run that reads
    # the model's own turn-1 answers from the first run's samples.
    out2 = out / TURN2_DIR
    if _newest(out2, "results_*.json") is not None:
        _log(f"evaluate {model.label} turn 2: done ({out2})")
        return
    out2.mkdir(parents=True, exist_ok=True)
    if run(_lm_eval(cfg, model, second, out2, {METADATA_TURN1: str(out)}), env) != 0:
        raise StudyError(f"evaluate {model.label} turn 2 failed; rerun the study to resume")


def judge(cfg: StudyConfig, model: ModelSpec, env: dict[str, str], run: Runner) -> None:
    out = eval_dir(cfg, model.label)
    samples = _newest(out, "samples_mtbench_langadapt_*.jsonl")
    if samples is None:
        _log(f"judge {model.label}: no MT-Bench answers, nothing to judge")
        return
    verdicts = _newest(out, "judge_mtbench_langadapt_*.jsonl")
    if verdicts is not None and verdicts >= samples:
        _log(f"judge {model.label}: done")
        return
    if run([_bin("langadapt"), "judge", str(out)], env) != 0:
        raise StudyError(f"judge {model.label} failed; rerun the study (verdicts are cached)")


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
    if "evaluate" in steps:
        for model in plan:
            evaluate(cfg, model, env, run)
    if "judge" in steps:
        if cfg.judge is None:
            _log("judge: off (MT-Bench reports fidelity only)")
        else:
            for model in plan:
                judge(cfg, model, env, run)
    if "report" not in steps:
        return None
    from langadapt_tasks.report import build_report

    done = [m for m in plan if _newest(eval_dir(cfg, m.label), "results_*.json") is not None]
    if not done:
        raise StudyError("no model has been evaluated yet: nothing to report")
    baseline = cfg.baseline if cfg.baseline in {m.label for m in done} else done[0].label
    report = build_report(
        [eval_dir(cfg, m.label) for m in done],
        cfg.output / "report",
        names=[m.label for m in done],
        baseline=baseline,
        title=f"langadapt study: {cfg.path.name}",
    )
    _log(f"report: {cfg.output / 'report' / 'report.md'}")
    return report
