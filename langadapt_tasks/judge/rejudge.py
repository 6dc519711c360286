"""``langadapt judge``: judge saved ``--log_samples`` output without regenerating.

Reads lm-eval samples files of the ``mtbench_langadapt_*`` tasks (or
directories holding them, one folder per model as lm-eval writes them), judges
every model's answers with the configured judge and rubric (cached verdicts are
reused), writes ``judge_<group>_<time>.jsonl`` next to each model's samples and
prints the same per-category table as lm-eval, per model.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from langadapt_tasks.benchmarks.fidelity import fidelity
from langadapt_tasks.benchmarks.mtbench import CATEGORIES, group_name, read_jsonl
from langadapt_tasks.judge.engine import judge_items, summarize, verdict_rows, write_jsonl
from langadapt_tasks.judge.pairwise import (
    BOOTSTRAP_SEED,
    PAIR_GLOB,
    RESAMPLES,
    Pairing,
    pair_rows,
    pair_table,
    pair_up,
    summarize_pairs,
)
from langadapt_tasks.judge.rubrics import JudgeItem
from langadapt_tasks.judge.settings import JudgeSettings, require_configured
from langadapt_tasks.judge.verdicts import (
    SAMPLES_GLOB,
    model_identity,
    samples_items,
)
from langadapt_tasks.languages.spec import LanguageSpecError, register


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


def _register_specs(path: Path) -> None:
    """A language of your own: its spec (templates, fidelity) is named in the samples."""
    for where, sample in read_jsonl(path):
        doc = sample.get("doc")
        if isinstance(doc, dict) and doc.get("spec"):
            try:  # only a spec the user named (or a shipped one): a file cannot choose it
                register(doc["spec"], trusted=False)
            except LanguageSpecError as err:
                raise ValueError(f"{where}: {err}") from None


def load_items(files: Sequence[Path]) -> list[tuple[JudgeItem, Path]]:
    """One judge item per logged sample, identified by the model whose folder holds it
    (a later file wins for the same model and question)."""
    items: dict[str, tuple[JudgeItem, Path]] = {}
    for path in files:
        who = model_identity(path.parent)
        _register_specs(path)
        for item in samples_items(path, who.name):
            if who.model_args:
                item.meta["model_args"] = who.model_args
            seen = items.get(item.id)
            if seen and seen[1].parent != path.parent and seen[0].answers != item.answers:
                raise ValueError(
                    f"{seen[1].parent} and {path.parent} both hold answers of model "
                    f"{who.name!r} to {item.id}; judge these folders one at a time"
                )
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


def _out_dir(settings: JudgeSettings, samples_folder: Path, several: bool) -> Path:
    """Beside the model's samples; under ``--output-dir``, in a folder per model when
    there are several (named as lm-eval names the samples folder)."""
    if settings.output_dir is None:
        return samples_folder
    return settings.output_dir / samples_folder.name if several else settings.output_dir


def rejudge(
    paths: Sequence[Path],
    settings: JudgeSettings,
    *,
    progress: bool = True,
    languages: Sequence[str] | None = None,
    against: Sequence[Path] = (),
) -> dict[str, Any]:
    """Judge every model's samples under ``paths`` (only ``languages``' answers, when
    given); per model: the summary, the table and the verdict files written. A pairwise
    rubric compares each model's answers with those under ``against`` (``judge.pairwise``).
    Raises ``JudgeStopped`` at a client error (bad key...)."""
    require_configured(settings)
    if not settings.enabled:
        raise ValueError("the judge is switched off (judge=off / LANGADAPT_JUDGE=off)")
    pairwise = settings.rubric_record.kind == "pairwise"
    if pairwise != bool(against):
        raise ValueError(
            f"rubric {settings.rubric!r} compares two models: give the baseline's samples "
            "with --against"
            if pairwise
            else f"--against compares two models' answers: choose a pairwise rubric "
            f"(--rubric fastchat-pair), not {settings.rubric!r}"
        )
    pairs = _only(load_items(samples_files(paths)), languages)
    if pairwise:
        return _against(
            pairs, _only(load_items(samples_files(against)), languages), settings, progress
        )
    items = [item for item, _ in pairs]
    verdicts = judge_items(items, settings, progress=progress)
    stamp = dt.datetime.now().isoformat().replace(":", "-")
    by_folder: dict[Path, list[JudgeItem]] = {}
    for item, path in pairs:
        by_folder.setdefault(path.parent, []).append(item)
    models: dict[str, Any] = {}
    for folder, folder_items in sorted(by_folder.items()):
        out_dir = _out_dir(settings, folder, len(by_folder) > 1)
        groups: dict[tuple[str, int], list[JudgeItem]] = {}
        for item in folder_items:
            groups.setdefault((item.lang, item.turn), []).append(item)
        written = []
        for (lang, turn), group in sorted(groups.items()):
            path = out_dir / f"judge_{group_name(lang, turn)}_{stamp}.jsonl"
            written.append(str(write_jsonl(path, verdict_rows(group, verdicts, settings))))
        summary = summarize(folder_items, verdicts, key=_group)
        models[folder_items[0].model or str(folder)] = {
            "folder": str(folder),
            "summary": summary,
            "markdown": table(folder_items, summary),
            "written": written,
        }
    judged = [verdicts.get(item.id) for item in items]
    return {
        "judge": settings.describe(),
        "models": models,
        "answers": len(items),
        "unscored": sum(1 for v in judged if v is None or v.score is None),
        "deadline_hit": sum(1 for v in judged if v is not None and v.deadline_hit),
        "deadline": settings.deadline,
        "written": [path for m in models.values() for path in m["written"]],
    }


def _only(
    pairs: list[tuple[JudgeItem, Path]], languages: Sequence[str] | None
) -> list[tuple[JudgeItem, Path]]:
    """The answers in ``languages`` (all without), or an error naming the languages found."""
    if not languages:
        return pairs
    found = sorted({item.lang for item, _ in pairs})
    kept = [(item, path) for item, path in pairs if item.lang in languages]
    if not kept:
        raise ValueError(
            f"no MT-Bench answers in {', '.join(languages)} under the paths given "
            f"(found: {', '.join(found)})"
        )
    return kept


def _against(
    pairs: list[tuple[JudgeItem, Path]],
    baseline: list[tuple[JudgeItem, Path]],
    settings: JudgeSettings,
    progress: bool,
) -> dict[str, Any]:
    """Each model's answers against the baseline's (one model), both orders."""
    names = sorted({item.model for item, _ in baseline})
    if len(names) != 1:
        raise ValueError(
            f"--against must hold one model's answers (the baseline); found {len(names)}: "
            f"{', '.join(names)}"
        )
    theirs = [item for item, _ in baseline]
    by_folder: dict[Path, list[JudgeItem]] = {}
    for item, path in pairs:
        if item.model != names[0]:  # the baseline itself, if among the paths, is skipped
            by_folder.setdefault(path.parent, []).append(item)
    if not by_folder:
        raise ValueError(f"no model's answers to compare with the baseline {names[0]}")
    several = len(by_folder) > 1
    return judge_against(
        {_out_dir(settings, f, several): pair_up(mine, theirs) for f, mine in by_folder.items()},
        settings,
        progress=progress,
    )


@dataclass(frozen=True)
class PairCoverage:
    pairs: int  # answers of the model with a baseline answer to the same question and turn
    scored: int  # with a pair verdict of ``rubric`` for these very two answers, scored
    unscored: int  # with such a verdict, unscored

    @property
    def missing(self) -> int:
        return self.pairs - self.scored - self.unscored


def pair_coverage(
    model_dir: Path, baseline_dir: Path, rubric: str, languages: Sequence[str] | None = None
) -> PairCoverage:
    """The model's answers under ``model_dir`` paired with the baseline's, against the pair
    verdict rows beside them (the row judged last counts, only for the same two answers)."""
    try:
        mine = [i for i, _ in _only(load_items(samples_files([model_dir])), languages)]
        theirs = [i for i, _ in _only(load_items(samples_files([baseline_dir])), languages)]
    except (FileNotFoundError, ValueError):
        return PairCoverage(0, 0, 0)
    rows: dict[tuple, dict[str, Any]] = {}
    for path in sorted(model_dir.rglob(PAIR_GLOB)):
        for _, row in read_jsonl(path):
            if (row.get("judge") or {}).get("rubric") == rubric:
                key = (row.get("model"), row.get("against"), row.get("lang"), row.get("turn"))
                rows[(*key, row.get("question_id"))] = row
    scored = unscored = 0
    pairing = pair_up(mine, theirs)
    for item, _ in pairing.pairs:
        row = rows.get((item.model, item.rival_model, item.lang, item.turn, item.question_id))
        if row is None or row.get("answers") != list(item.answers):
            continue
        if row.get("against_answers") != list(item.rival):
            continue
        if row.get("result") is None:
            unscored += 1
        else:
            scored += 1
    return PairCoverage(len(pairing.pairs), scored, unscored)


def judge_against(
    pairs_by_folder: dict[Path, Pairing],
    settings: JudgeSettings,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Judge every pair (both orders; cached verdicts reused) and write each model's pair
    verdicts beside its samples; per model: the summary, its table, what was not paired."""
    items = [item for p in pairs_by_folder.values() for pair in p.pairs for item in pair]
    verdicts = judge_items(items, settings, progress=progress) if items else {}
    stamp = dt.datetime.now().isoformat().replace(":", "-")
    models: dict[str, Any] = {}
    unscored = answers = 0
    for folder, pairing in sorted(pairs_by_folder.items()):
        rows = pair_rows(pairing.pairs, verdicts, settings)
        by_group: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_group.setdefault(group_name(row["lang"], row["turn"]), []).append(row)
        written = [
            str(write_jsonl(folder / f"pair_{group}_{stamp}.jsonl", part))
            for group, part in sorted(by_group.items())
        ]
        summary = summarize_pairs(rows)
        name = pairing.pairs[0][0].model if pairing.pairs else str(folder)
        models[name] = {
            "folder": str(folder),
            "against": pairing.pairs[0][0].rival_model if pairing.pairs else None,
            "summary": summary,
            "markdown": pair_table(summary),
            "missing": pairing.missing,
            "written": written,
        }
        answers += len(rows)
        unscored += sum(1 for r in rows if r["unscored"])
    return {
        "judge": settings.describe(),
        "models": models,
        "answers": answers,
        "unscored": unscored,
        "deadline_hit": sum(1 for v in verdicts.values() if v.deadline_hit),
        "deadline": settings.deadline,
        "written": [path for m in models.values() for path in m["written"]],
        "bootstrap": {"seed": BOOTSTRAP_SEED, "resamples": RESAMPLES},
    }


def print_head(report: dict[str, Any], as_json: bool) -> bool:
    """The whole report as JSON (True: nothing more to print), or its judge's line."""
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return True
    judge = report["judge"]
    print(f"judge: {judge['model']} at {judge['base_url']}, rubric {judge['rubric']}")
    return False


def print_report(report: dict[str, Any], as_json: bool) -> None:
    if print_head(report, as_json):
        return
    if "bootstrap" in report:
        boot = report["bootstrap"]
        print(
            "pairwise: both orders per pair; win rate = (wins + ties/2) / scored pairs; 95% "
            f"bootstrap interval over questions ({boot['resamples']} resamples, "
            f"seed {boot['seed']})"
        )
    for name, model in report["models"].items():
        against = f" against {model['against']}" if model.get("against") else ""
        print(f"\nmodel: {name}{against}\n")
        print(model["markdown"])
        for line in model.get("missing", []):
            print(f"not compared: {line}")
        for path in model["written"]:
            print(f"\nverdicts: {path}")


def unscored_note(report: dict[str, Any]) -> str | None:
    """What to tell the user about answers left unscored (None when all are scored)."""
    if not report["unscored"]:
        return None
    note = f"{report['unscored']} of {report['answers']} answers are unscored"
    if report["deadline_hit"]:
        note += (
            f" ({report['deadline_hit']} hit the {report['deadline']:g} s request deadline; "
            "raise it with LANGADAPT_JUDGE_DEADLINE)"
        )
    return note + "; run `langadapt judge` again to judge only those (scored ones are cached)"
