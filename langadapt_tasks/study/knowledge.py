"""The languages' multiple-choice knowledge tasks, which a study evaluates by itself.

Each language of the study's MT-Bench tasks has, in its spec, a ``multiple_choice``
task (``cmmlu_langadapt`` for zh, ``turkishmmlu_langadapt`` for tr). The study adds
the ones ``evaluate.tasks`` does not list, when their data can be loaded (a local
directory from the environment, else the Hub); the others are skipped and the report
says "not available".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from langadapt_tasks.benchmarks import cmmlu as cmmlu_data
from langadapt_tasks.benchmarks import turkishmmlu as turkishmmlu_data
from langadapt_tasks.benchmarks.scoring import BENCHMARKS
from langadapt_tasks.languages.spec import builtin_specs

_MTBENCH = re.compile(r"^mtbench_langadapt_([a-z][a-z0-9]{1,7})(?:_|$)")


@dataclass
class Knowledge:
    """Tasks the study adds, and the benchmarks it skips (name -> why)."""

    added: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


# Knowledge tasks whose data may be missing: how to tell (a reason, or None when loadable).
AVAILABILITY: dict[str, Callable[[Mapping[str, str]], str | None]] = {
    "cmmlu_langadapt": cmmlu_data.availability,
    "turkishmmlu_langadapt": turkishmmlu_data.availability,
}


def languages(tasks: Sequence[str]) -> list[str]:
    """The codes of the languages of the study's MT-Bench tasks, in order."""
    codes: list[str] = []
    for task in tasks:
        if (m := _MTBENCH.match(task)) and m.group(1) not in codes:
            codes.append(m.group(1))
    return codes


def listed(task: str, tasks: Sequence[str]) -> bool:
    """Whether ``task`` or one of its categories or subjects is among ``tasks``."""
    return any(t == task or t.startswith(f"{task}_") for t in tasks)


def knowledge_tasks(tasks: Sequence[str], env: Mapping[str, str]) -> Knowledge:
    """The multiple-choice tasks of the study's languages that ``tasks`` lacks."""
    out = Knowledge()
    specs = builtin_specs()
    for code in languages(tasks):
        spec = specs.get(code)
        task = spec.mc_task if spec is not None else None
        if task is None or listed(task, tasks) or task in out.added:
            continue
        check = AVAILABILITY.get(task)
        problem = check(env) if check is not None else None
        if problem is None:
            out.added.append(task)
        else:
            name = BENCHMARKS[task].name if task in BENCHMARKS else task
            out.unavailable[name] = problem
    return out
