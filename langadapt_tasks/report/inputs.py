"""Find lm-eval runs, name their models and merge each model's runs.

A run is one ``results_*.json`` with its samples files (same time stamp) and the
judge verdict files (``judge_*.jsonl``) beside it. Inputs that do not fit (not a
results file, another task's results, two runs of the same task for one model) are
explained in ``notes`` rather than raised, so a report is written for whatever is
usable.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langadapt_tasks.judge.verdicts import VERDICT_GLOB

# Results keys that belong to the report: CMMLU, TurkishMMLU and MMLU groups and subjects,
# MT-Bench groups and categories (any language, turn 1 and 2), languages' own tasks,
# held-out loss.
OUR_TASKS = re.compile(
    r"^(cmmlu_langadapt|turkishmmlu_langadapt|mmlu_langadapt|mtbench_langadapt_|mc_langadapt_"
    r"|heldout_langadapt)"
)
# Folder names too generic to name an adapter by themselves.
_GENERIC = {"final", "adapter", "adapters", "best", "model", "lora", "output", "out"}


@dataclass
class Run:
    """One lm-eval results file."""

    path: Path
    data: dict[str, Any]
    name: str

    @property
    def tasks(self) -> dict[str, Any]:
        return self.data["results"]

    @property
    def date(self) -> float:
        value = self.data.get("date")
        return float(value) if isinstance(value, (int, float)) else self.path.stat().st_mtime

    @property
    def stamp(self) -> str:
        """lm-eval's time stamp, shared by the results file and its samples files."""
        return self.path.stem.removeprefix("results_")

    @property
    def limit(self) -> float | int | None:
        """The run's recorded ``--limit`` (None: every question)."""
        value = (self.data.get("config") or {}).get("limit")
        return value if isinstance(value, (int, float)) else None

    def n_shot(self, task: str) -> int | None:
        value = (self.data.get("n-shot") or {}).get(task)
        return value if isinstance(value, int) else None

    def samples_file(self, task: str) -> Path | None:
        """The samples lm-eval wrote for ``task`` in this run (``--log_samples``), if any."""
        path = self.path.parent / f"samples_{task}_{self.stamp}.jsonl"
        return path if path.is_file() else None

    def verdict_files(self) -> list[Path]:
        return sorted(self.path.parent.glob(VERDICT_GLOB))


@dataclass
class Model:
    """A model's merged results: task key -> the results row and the run it came from."""

    name: str
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[str, Run] = field(default_factory=dict)
    n_samples: dict[str, int] = field(default_factory=dict)

    @property
    def runs(self) -> list[Run]:
        seen: dict[Path, Run] = {}
        for run in self.sources.values():
            seen.setdefault(run.path, run)
        return list(seen.values())


def _label(path_text: str) -> str:
    path = Path(path_text.rstrip("/"))
    if path.name.lower() in _GENERIC or path.name.startswith("checkpoint-"):
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    return path.name or path_text


def model_args(data: dict[str, Any]) -> dict[str, str]:
    """The run's ``--model_args`` as a dict (lm-eval stores a string or a dict)."""
    raw = (data.get("config") or {}).get("model_args") or ""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out = {}
    for part in str(raw).split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def model_name(data: dict[str, Any]) -> str:
    """``base`` or ``base + adapter``, from the run's model args."""
    args = model_args(data)
    base = args.get("pretrained") or args.get("model") or args.get("path")
    if not base:
        base = data.get("model_name") or (data.get("config") or {}).get("model") or "model"
    name = _label(str(base))
    if args.get("peft"):
        name += f" + {_label(args['peft'])}"
    return name


def results_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.rglob("results_*.json"))
    return [path]


def load_run(path: Path) -> Run:
    """Read one results file; ``ValueError`` says why it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot be read ({err})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err.msg}, line {err.lineno})") from err
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ValueError(f"{path}: not an lm-eval results file (no 'results' table)")
    return Run(path, data, model_name(data))


def _finite(row: dict[str, Any]) -> bool:
    return any(isinstance(v, (int, float)) and not math.isnan(v) for v in row.values())


def collect(
    inputs: list[Path], names: list[str] | None = None
) -> tuple[dict[str, Model], list[str]]:
    """Models in input order, and notes on everything skipped or ambiguous.

    ``names``: ``LABEL`` entries name the inputs in order; ``OLD=LABEL`` renames a
    model named ``OLD`` from its model args.
    """
    notes: list[str] = []
    positional = [n for n in names or [] if "=" not in n]
    renames = dict(n.split("=", 1) for n in names or [] if "=" in n)
    if positional and len(positional) != len(inputs):
        raise ValueError(
            f"--name given {len(positional)} times for {len(inputs)} inputs: give one per "
            "input, in order, or rename models with --name 'FROM ARGS=LABEL'"
        )
    runs: list[Run] = []
    seen: set[Path] = set()
    for index, arg in enumerate(inputs):
        if not arg.exists():
            notes.append(f"{arg}: no such file or directory; skipped")
            continue
        files = results_files(arg)
        if not files:
            notes.append(f"{arg}: no lm-eval results_*.json under it; skipped")
            continue
        for path in files:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                run = load_run(path)
            except ValueError as err:
                notes.append(f"{err}; skipped")
                continue
            ours = [t for t in run.tasks if OUR_TASKS.match(t)]
            if not ours:
                shown = ", ".join(sorted(run.tasks)[:5]) or "none"
                notes.append(
                    f"{path}: results of other tasks ({shown}), not of cmmlu_langadapt, "
                    "turkishmmlu_langadapt, mmlu_langadapt, mtbench_langadapt_*, mc_langadapt_* or "
                    "heldout_langadapt*; skipped"
                )
                continue
            if positional:
                run.name = positional[index]
            run.name = renames.get(run.name, run.name)
            runs.append(run)
    models: dict[str, Model] = {}
    for run in sorted(runs, key=lambda r: r.date):  # newer runs override older ones
        model = models.setdefault(run.name, Model(run.name))
        clashes = sorted(
            t
            for t in run.tasks
            if OUR_TASKS.match(t) and t in model.tasks and model.sources[t].path != run.path
        )
        if clashes:
            older = {model.sources[t].path for t in clashes}
            notes.append(
                f"{run.name}: two runs of the same model with the same tasks "
                f"({_summary(clashes)}): {', '.join(map(str, sorted(older)))} and {run.path}; "
                "the newer run is used. Give the runs different names with --name to "
                "compare them."
            )
        for task, row in run.tasks.items():
            if OUR_TASKS.match(task) and isinstance(row, dict) and _finite(row):
                model.tasks[task] = row
                model.sources[task] = run
                n = ((run.data.get("n-samples") or {}).get(task) or {}).get("effective")
                if isinstance(n, int):
                    model.n_samples[task] = n
    # Input order, not date order.
    order = {run.name: i for i, run in reversed(list(enumerate(runs)))}
    return dict(sorted(models.items(), key=lambda kv: order[kv[0]])), notes


def _summary(tasks: list[str]) -> str:
    kinds = {
        "cmmlu": "CMMLU",
        "turkishmmlu": "TurkishMMLU",
        "mmlu": "English MMLU",
        "mtbench": "MT-Bench",
        "mc": "multiple choice",
        "heldout": "held-out loss",
    }
    heads = sorted({kinds[t.split("_", 1)[0]] for t in tasks})
    return " and ".join(heads) + f", {len(tasks)} task(s)"
