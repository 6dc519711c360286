"""English retention: what adapting a model to another language cost it in English.

Every model of the study (base, instruct, adapters) also takes English MMLU
(``mmlu_langadapt``: lm-eval's ``mmlu``, 5-shot unless ``evaluate.num_fewshot`` says
otherwise) and English MT-Bench (``mtbench_langadapt_en``: FastChat's questions, judged with
FastChat's own prompts, rubric ``fastchat``, whatever rubric the study's languages use), in
runs of their own (``eval/<label>/retention*/``), so that switching retention on or off
never redoes the other runs. ``evaluate.retention`` lists them (``mmlu`` is the whole
group); absent, both are taken when their data can be read (a local copy, else the Hub or
FastChat's files), and the report says "not available" for the others; ``[]`` is off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langadapt_tasks.benchmarks import mmlu as mmlu_data
from langadapt_tasks.benchmarks.mmlu_subjects import MMLU_GROUP
from langadapt_tasks.benchmarks.mtbench import ENV_DIR as MTBENCH_ENV
from langadapt_tasks.benchmarks.mtbench import METADATA_TURN1, group_name
from langadapt_tasks.languages.spec import builtin_specs
from langadapt_tasks.paths import offline, url_problem
from langadapt_tasks.report.tables import ENGLISH_MMLU, ENGLISH_MTBENCH
from langadapt_tasks.study.config import ModelSpec, StudyConfig
from langadapt_tasks.study.layout import EvalRun, eval_dir

ENGLISH = "en"
RUBRIC = "fastchat"  # English MT-Bench: FastChat's own prompts, verbatim
MMLU = "mmlu"  # the config's name of the whole mmlu_langadapt group
MTBENCH_EN = group_name(ENGLISH, 1)
DEFAULT = (MMLU, MTBENCH_EN)
MC_DIR, MTBENCH_DIR, TURN2_DIR = "retention", "retention_mtbench", "retention_turn2"
FOLDERS = (MC_DIR, MTBENCH_DIR, TURN2_DIR)
NAMES = {MMLU_GROUP: ENGLISH_MMLU, MTBENCH_EN: ENGLISH_MTBENCH}


@dataclass
class Retention:
    """The retention tasks the study runs, and those it skips (name -> why)."""

    tasks: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


def task_of(name: str) -> str:
    return MMLU_GROUP if name == MMLU else name


def mtbench_availability(env: Mapping[str, str]) -> str | None:
    """Why English MT-Bench cannot be read with ``env``'s settings, or None."""
    root = env.get(MTBENCH_ENV)
    if root and (Path(root) / ENGLISH / "question.jsonl").is_file():
        return None
    local = f"no local copy ({MTBENCH_ENV}=DIR with DIR/{ENGLISH}/question.jsonl)"
    if offline(env):
        return f"{local} and downloads are off (HF_HUB_OFFLINE)"
    url = builtin_specs()[ENGLISH].questions_url or ""
    problem = url_problem(url)
    return None if problem is None else f"{local} and {url} unreachable ({problem})"


def retention_tasks(cfg: StudyConfig, env: Mapping[str, str]) -> Retention:
    """The configured (or default) retention tasks whose data can be read."""
    out = Retention()
    for name in DEFAULT if cfg.retention is None else cfg.retention:
        task = task_of(name)
        mmlu = task.startswith(MMLU_GROUP)
        problem = mmlu_data.availability(env) if mmlu else mtbench_availability(env)
        if problem is None:
            out.tasks.append(task)
        else:
            out.unavailable[NAMES[MMLU_GROUP if mmlu else MTBENCH_EN]] = problem
    return out


def is_english_mtbench(task: str) -> bool:
    return task == MTBENCH_EN or task.startswith(f"{MTBENCH_EN}_")


def retention_runs(cfg: StudyConfig, model: ModelSpec, tasks: Sequence[str]) -> list[EvalRun]:
    """The model's retention runs: MMLU; English MT-Bench; its second turns (``turn2``)."""
    out = eval_dir(cfg, model.label)
    mc = [t for t in tasks if not is_english_mtbench(t)]
    mt = [t for t in tasks if is_english_mtbench(t)]
    runs = [EvalRun(MC_DIR, out / MC_DIR, mc, cfg.num_fewshot, {})] if mc else []
    if mt:
        runs.append(EvalRun(MTBENCH_DIR, out / MTBENCH_DIR, mt, None, {}))
        if cfg.turn2:
            second = [t.replace(MTBENCH_EN, group_name(ENGLISH, 2), 1) for t in mt]
            turn1 = {METADATA_TURN1: str(out / MTBENCH_DIR)}
            runs.append(EvalRun(TURN2_DIR, out / TURN2_DIR, second, None, turn1))
    return runs
