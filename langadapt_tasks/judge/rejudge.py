"""``langadapt judge``: judge saved ``--log_samples`` output without regenerating.

Reads lm-eval samples files of the ``mtbench_langadapt_*`` tasks (or
directories holding them), judges every answer with the configured judge and
rubric (cached verdicts are reused), writes ``judge_<group>_<time>.jsonl``
next to the samples and prints the same per-category table as lm-eval.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from langadapt_tasks.fidelity import fidelity
from langadapt_tasks.judge.engine import judge_items, summarize, verdict_rows, write_jsonl
from langadapt_tasks.judge.rubrics import JudgeItem
from langadapt_tasks.judge.settings import JudgeSettings, require_configured
from langadapt_tasks.language_spec import register
from langadapt_tasks.mtbench_data import CATEGORIES, read_jsonl, sample_answer
from langadapt_tasks.mtbench_task import group_name, to_item

SAMPLES_GLOB = "samples_mtbench_langadapt_*.jsonl"


def samples_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.rglob(SAMPLES_GLOB))
            if not found:
                raise FileNotFoundError(f"{path}: no {SAMPLES_GLOB} files under it")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return files


def load_items(files: Sequence[Path]) -> list[tuple[JudgeItem, Path]]:
    """One judge item per logged sample (a later file wins for the same answer id)."""
    items: dict[str, tuple[JudgeItem, Path]] = {}
    for path in files:
        for where, sample in read_jsonl(path):
            doc, answer = sample.get("doc"), sample_answer(sample)
            if not isinstance(doc, dict) or "lang" not in doc or "turn" not in doc:
                raise ValueError(f"{where}: not a sample of an mtbench_langadapt task")
            if answer is None:
                raise ValueError(f"{where}: no generated answer (resps) in the sample")
            if doc.get("spec"):  # a language of your own: its templates and fidelity
                register(doc["spec"])
            item = to_item(doc, answer)
            items[item.id] = (item, path)
    if not items:
        raise ValueError("no MT-Bench samples found")
    return list(items.values())


def _group(item: JudgeItem) -> str:
    return group_name(item.lang, item.turn)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(items: Sequence[JudgeItem], summary: dict[str, Any]) -> str:
    """Markdown: per language and turn, the mean and each category."""
    fid: dict[str, list[float]] = {}
    for item in items:
        value = fidelity(item.answers[-1], item.lang)
        fid.setdefault(_group(item), []).append(value)
        fid.setdefault(f"{_group(item)}/{item.category}", []).append(value)
    lines = [
        "| MT-Bench | judge_score | judge_unscored | lang_fidelity | n |",
        "|---|---|---|---|---|",
    ]
    for task, entry in sorted(summary.items()):
        lines.append(
            f"| **{task}** | {_fmt(entry['score'])} | {entry['unscored']} | "
            f"{_fmt(fmean(fid[task]), 3)} | {entry['n']} |"
        )
        for cat in CATEGORIES:
            if (c := entry["categories"].get(cat)) is not None:
                lines.append(
                    f"| {cat} | {_fmt(c['score'])} | {c['unscored']} | "
                    f"{_fmt(fmean(fid[f'{task}/{cat}']), 3)} | {c['n']} |"
                )
    return "\n".join(lines)


def rejudge(
    paths: Sequence[Path], settings: JudgeSettings, *, progress: bool = True
) -> dict[str, Any]:
    """Judge the samples under ``paths``; return the summary, the table and the files written."""
    require_configured(settings)
    if not settings.enabled:
        raise ValueError("the judge is switched off (judge=off / LANGADAPT_JUDGE=off)")
    pairs = load_items(samples_files(paths))
    items = [item for item, _ in pairs]
    verdicts = judge_items(items, settings, progress=progress)
    stamp = dt.datetime.now().isoformat().replace(":", "-")
    written = []
    groups: dict[tuple[str, int], list[tuple[JudgeItem, Path]]] = {}
    for item, path in pairs:
        groups.setdefault((item.lang, item.turn), []).append((item, path))
    for (lang, turn), group in sorted(groups.items()):
        out_dir = settings.output_dir or group[0][1].parent
        path = out_dir / f"judge_{group_name(lang, turn)}_{stamp}.jsonl"
        written.append(write_jsonl(path, verdict_rows([i for i, _ in group], verdicts, settings)))
    summary = summarize(items, verdicts, key=_group)
    return {
        "judge": settings.describe(),
        "summary": summary,
        "markdown": table(items, summary),
        "written": [str(p) for p in written],
    }


def print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    judge = report["judge"]
    print(f"judge: {judge['model']} at {judge['base_url']}, rubric {judge['rubric']}\n")
    print(report["markdown"])
    for path in report["written"]:
        print(f"\nverdicts: {path}")
