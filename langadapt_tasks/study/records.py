"""What a finished ``lm_eval`` run of the study leaves: its completion record
(``langadapt_run.json``, written only after lm_eval exited 0 and every task's samples were
found) and the checks that decide whether a run is done."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from langadapt_tasks.judge.verdicts import RESULTS_GLOB
from langadapt_tasks.study.commands import SUBRUNS, EvalRun

MARKER = "langadapt_run.json"  # written when lm_eval exited 0 and every task's samples exist


class StudyError(RuntimeError):
    """A step failed or cannot run yet; rerunning the study resumes."""


def own_results(ev: EvalRun) -> set[Path]:
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


def record(ev: EvalRun, label: str, before: set[Path], request: dict[str, Any]) -> dict[str, Any]:
    """Check what lm_eval wrote (results, every task's samples): the run's completion record,
    written by ``_mark_done``."""
    what = f"evaluate {label}" + ("" if ev.name == "main" else f" ({ev.name})")
    new = sorted(own_results(ev) - before)
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


def mark_done(ev: EvalRun, marker: dict[str, Any]) -> None:
    tmp = ev.folder / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, indent=2), encoding="utf-8")
    tmp.replace(ev.folder / MARKER)
