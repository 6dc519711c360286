"""Build the whole report into one folder: report.md, report.html, report.csv, PNGs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.mtbench import CATEGORIES as MT_CATEGORIES
from langadapt_tasks.benchmarks.scoring import TURKISHMMLU
from langadapt_tasks.report import charts, grouped, render
from langadapt_tasks.report.bought import ENGLISH, bought_table
from langadapt_tasks.report.heldout import heldout_table
from langadapt_tasks.report.identity import Identity
from langadapt_tasks.report.inputs import collect
from langadapt_tasks.report.pairwise import pairwise_tables
from langadapt_tasks.report.tables import (
    CMMLU_COLUMNS,
    ENGLISH_MMLU,
    ENGLISH_MTBENCH,
    TURKISHMMLU_COLUMNS,
    Table,
    benchmark_tables,
    cmmlu_tables,
    delta_table,
    knowledge_table,
    mc_table,
    mmlu_table,
    mtbench_groups,
    mtbench_table,
)


def build_report(
    inputs: list[Path],
    out: Path,
    *,
    names: list[str] | None = None,
    baseline: str | None = None,
    title: str = "langadapt report",
    metric: str = "acc",
    unavailable: dict[str, str] | None = None,
    identities: dict[str, Identity] | None = None,
    compare: str | None = None,
    extra: list[tuple[str, list[Table]]] | None = None,
) -> dict[str, Any]:
    """Write the report under ``out``; return what was written and the notes.

    ``unavailable``: knowledge benchmarks that could not be evaluated (name -> why), shown
    as "not available" in the knowledge table. ``identities`` (model name -> its place in the
    grid) lays the tables out per model and language like the study's, adds the view across
    models and one chart per language; ``compare="published"`` (needs ``identities``) sets the
    study's published figures beside ours; ``extra``: sections the caller adds at the end
    (the study's tokenizer cost). Raises ``ValueError`` when nothing usable is left
    (the notes say why) or the arguments contradict each other.
    """
    if compare not in (None, "published"):
        raise ValueError(f"compare={compare!r}: the only comparison is 'published'")
    if compare and identities is None:
        raise ValueError("compare='published' needs identities (base model, variant, language)")
    for key, ident in (identities or {}).items():
        if key != ident.label:
            raise ValueError(f"identities[{key!r}] is labelled {ident.label!r}")
    models, notes = collect(inputs, names)
    if not models:
        raise ValueError(
            "no CMMLU, TurkishMMLU, MT-Bench, multiple-choice or held-out results to report:\n  "
            + "\n  ".join(notes or ["no inputs"])
        )
    if baseline is None:
        baseline = next(iter(models))
    elif baseline not in models:
        raise ValueError(f"--baseline {baseline!r} is none of the models: {', '.join(models)}")

    sections: list[tuple[str, list[Table]]] = []
    cmmlu = cmmlu_tables(models, metric)
    turkish = benchmark_tables(models, TURKISHMMLU, metric)
    knowledge = [t for t in [knowledge_table(models, unavailable, metric)] if t is not None]
    mt = [mtbench_table(models, g) for g in mtbench_groups(models)]
    mt = [t for t in mt if t.rows]
    if knowledge:
        sections.append(("Knowledge: CMMLU and TurkishMMLU", knowledge))
    if cmmlu:
        sections.append(("CMMLU", cmmlu))
    if turkish:
        sections.append(("TurkishMMLU", turkish))
    if mt:
        sections.append(("MT-Bench", mt))
    mc = [t for t in [mc_table(models, metric)] if t is not None]
    if mc:
        sections.append(("Multiple choice", mc))
    english = [t for t in [mmlu_table(models, unavailable, metric)] if t is not None]
    if english:
        sections.append(("English retention: MMLU", english))
    # English MT-Bench has no table when not available; English MMLU's is per group in the
    # grid layout, where a group without results shows none.
    said = (ENGLISH_MTBENCH, ENGLISH_MMLU) if identities is not None else (ENGLISH_MTBENCH,)
    notes += [
        f"{name}: not available ({why})"
        for name, why in (unavailable or {}).items()
        if name in said
    ]
    held = [t for t in [heldout_table(models)] if t is not None]
    if held:
        sections.append(("Held-out loss", held))
    compared = [*knowledge, *cmmlu, *turkish, *mt, *mc, *english]
    deltas = [d for t in compared if (d := delta_table(t, baseline)) is not None]
    if deltas:
        sections.append((f"Differences to the baseline ({baseline})", deltas))
    by_key = {t.key: t for t in [*cmmlu, *turkish, *mt, *mc, *held, *english]}
    if identities is None:
        languages = [
            *(held[0].columns if held else []),
            *(t.key.removeprefix("mtbench_") for t in mt),
        ]
        # English beside other languages is retention: their ledgers' cost columns.
        languages = [lang for lang in dict.fromkeys(languages) if not lang.endswith("_turn2")]
        if len(languages) > 1:
            languages = [lang for lang in languages if lang != ENGLISH]
        ledger = [
            bought_table(lang, list(models), baseline, by_key, models, f"_{lang}")
            for lang in languages
        ]
        if ledger := [t for t in ledger if t is not None]:
            sections.insert(0, ("Bought and cost", ledger))
    groups: list[grouped.Group] = []
    if identities is not None:
        lost = [k for k in identities if k not in models]
        notes += [f"{k}: an identity, but no results among the inputs" for k in lost]
        who = grouped.complete(models, identities)
        flat = [*cmmlu, *turkish, *mt, *mc, *held, *english]
        groups = grouped.build_groups(models, who, flat, metric)
        sections = [("Knowledge: CMMLU and TurkishMMLU", knowledge)] if knowledge else []
        laid_out = grouped.sections(groups, models, who, baseline, compare == "published")
        for group, (heading, tables) in zip(groups, laid_out, strict=True):
            base = grouped.group_baseline(group, baseline, who)
            first = None  # English retention: the cost columns of the other languages' tables
            if not grouped.is_retention(group.language, who):
                first = bought_table(
                    group.language, group.members, base, by_key, models, group.suffix
                )
            sections.append((heading, [first, *tables] if first is not None else tables))
        if across := grouped.across(groups, who):
            sections.append(("Across models: best adapter vs. base and instruct", across))
        notes += grouped.unshown(flat, groups, who)
    for name in models:
        if cmmlu and not any(name in t.rows for t in cmmlu):
            notes.append(f"{name}: no CMMLU results among the inputs")
        if mt and not any(name in t.rows for t in mt):
            notes.append(f"{name}: no MT-Bench results among the inputs")

    out.mkdir(parents=True, exist_ok=True)
    pngs: list[Path] = []
    grid = identities is not None  # charts per language instead of per benchmark
    if grid:
        for lang, items in grouped.language_charts(groups).items():
            pngs.append(charts.panels(items, out / f"language_{lang}.png"))
    if held:
        ylabel = "bits per byte (lower is better)"
        pngs.append(charts.bars(held, held[0].columns, ylabel, out / "heldout.png"))
    if cmmlu and not grid:
        pngs.append(charts.bars(cmmlu, CMMLU_COLUMNS, "accuracy (%)", out / "cmmlu.png"))
    if turkish and not grid:
        pngs.append(
            charts.bars(turkish, TURKISHMMLU_COLUMNS, "accuracy (%)", out / "turkishmmlu.png")
        )
    for table in [] if grid else mc:
        pngs.append(charts.bars([table], table.columns, "accuracy (%)", out / f"{table.key}.png"))
    for table in mt:
        if any(c.value is not None for cells in table.rows.values() for c in cells[:8]):
            if grid:
                continue
            cats = list(MT_CATEGORIES)
            pngs.append(
                charts.bars([table], [*cats, "mean"], "judge score", out / f"{table.key}.png")
            )
            pngs.append(charts.radar(table, cats, out / f"{table.key}_radar.png"))
        else:
            table.notes.append("not judged: no score charts")
    fidelity = [t for t in mt if any(cells[-1].value is not None for cells in t.rows.values())]
    if fidelity:
        merged = Table(
            "fidelity",
            "Language fidelity (% of answer letters in the language)",
            [t.title.removeprefix("MT-Bench, ") for t in fidelity],
            ["pct"] * len(fidelity),
        )
        for name in models:
            merged.rows[name] = [
                t.rows[name][-1] if name in t.rows else render.Cell(None) for t in fidelity
            ]
        pngs.append(
            charts.bars([merged], merged.columns, "fidelity (%)", out / "fidelity.png", 100)
        )

    pairwise = pairwise_tables(models)
    if pairwise:
        sections.append(("Pairwise", pairwise))
    sections += [(heading, tables) for heading, tables in extra or [] if tables]
    tables = [t for _, ts in sections for t in ts]
    files = {
        "markdown": out / "report.md",
        "html": out / "report.html",
        "csv": out / "report.csv",
        "json": out / "report.json",
    }
    runs = [
        f"{name}: "
        + "; ".join(f"{r.path.name} in {r.path.parent}" for r in model.runs)
        + (" (baseline)" if name == baseline else "")
        for name, model in models.items()
    ]
    files["markdown"].write_text(
        render.markdown(title, sections, pngs, notes, runs), encoding="utf-8"
    )
    files["html"].write_text(render.html_page(title, sections, pngs, notes, runs), encoding="utf-8")
    files["csv"].write_text(render.csv_text(tables), encoding="utf-8")
    data = {
        "models": list(models),
        "baseline": baseline,
        "tables": [asdict(t) for t in tables],
        "notes": notes,
    }
    if identities is not None:
        data["identities"] = {k: asdict(v) for k, v in identities.items()}
        data["compare"] = compare
    files["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return {
        "models": list(models),
        "baseline": baseline,
        "files": [str(p) for p in [*files.values(), *pngs]],
        "notes": notes,
        "markdown": files["markdown"].read_text(encoding="utf-8"),
    }
