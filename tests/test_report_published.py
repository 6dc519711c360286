"""``build_report`` with identities: the study's layout (per model and language, across models,
a chart per language) and our results beside the study's published figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from langadapt_tasks.judge.verdicts import item_from_doc
from langadapt_tasks.report import build_report
from langadapt_tasks.report.identity import Identity

STAMP = "2026-01-01T00-00-00.000001"
LLAMA_DIR = "/models/Meta-Llama-3-8B"  # a local copy, named like the study's model
MISTRAL = "mistralai/Mistral-7B-v0.1"
CMMLU_KEYS = ("stem", "humanities", "social_science", "other", "china_specific")


def results(folder: Path, args: str, tasks: dict[str, dict], **extra: Any) -> Path:
    folder.mkdir(parents=True)
    data = {"results": tasks, "config": {"model_args": args}, "model_name": args, **extra}
    path = folder / f"results_{STAMP}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return folder


def cmmlu(stem: float, shots: int) -> tuple[dict[str, dict], dict[str, int]]:
    """lm-eval's CMMLU groups (STEM ``stem``, the rest 0.5, stderr 0.01) and one subject."""
    tasks = {
        f"cmmlu_langadapt_{k}": {"acc,none": stem if k == "stem" else 0.5, "acc_stderr,none": 0.01}
        for k in CMMLU_KEYS
    }
    tasks["cmmlu_langadapt"] = {"acc,none": 0.45, "acc_stderr,none": 0.005}
    tasks["cmmlu_langadapt_arts"] = {"acc,none": 0.5, "acc_stderr,none": 0.05}
    return tasks, {"cmmlu_langadapt_arts": shots}


def judged_mtbench(folder: Path, args: str, scores: dict[str, float], judge: str) -> Path:
    """MT-Bench tr answers (one per category) with the judge's verdicts beside them."""
    folder = results(
        folder,
        args,
        {f"mtbench_langadapt_tr_{c}": {"lang_fidelity,none": 1.0} for c in scores},
        **{"n-samples": {f"mtbench_langadapt_tr_{c}": {"effective": 1} for c in scores}},
    )
    verdicts = []
    for qid, (category, score) in enumerate(scores.items(), start=101):
        doc = {
            "lang": "tr",
            "turn": 1,
            "question_id": qid,
            "category": category,
            "turns": [f"soru {qid}", "devam"],
            "reference": [],
        }
        sample = {"doc": doc, "resps": [["cevap"]], "filtered_resps": ["cevap"]}
        path = folder / f"samples_mtbench_langadapt_tr_{category}_{STAMP}.jsonl"
        path.write_text(json.dumps(sample) + "\n", encoding="utf-8")
        item = item_from_doc(doc, "cevap", args)
        verdicts.append(
            {
                "id": item.id,
                **item.to_dict(),
                "score": score,
                "unscored": False,
                "error": None,
                "judge": {"model": judge, "rubric": "paper"},
                "judged_at": "2026-01-02T00:00:00",
            }
        )
    path = folder / "judge_mtbench_langadapt_tr_2026-01-02T00-00-00.jsonl"
    path.write_text("".join(json.dumps(v) + "\n" for v in verdicts), encoding="utf-8")
    return folder


@pytest.fixture
def grid(tmp_path: Path) -> tuple[list[Path], dict[str, Identity]]:
    runs = tmp_path / "eval"
    base_tasks, base_shots = cmmlu(0.30, 5)
    lora_tasks, lora_shots = cmmlu(0.40, 0)
    tr_tasks, tr_shots = cmmlu(0.35, 5)
    other_tasks, other_shots = cmmlu(0.60, 5)
    mistral_instruct = {
        "mtbench_langadapt_tr_coding": {"judge_score,none": 3.0, "lang_fidelity,none": 1.0}
    }
    paths = [
        results(
            runs / "llama3-base", f"pretrained={LLAMA_DIR}", base_tasks, **{"n-shot": base_shots}
        ),
        results(
            runs / "llama3-zh-r16-a48",
            f"pretrained={LLAMA_DIR},peft=adapters/zh/r16-a48",
            lora_tasks,
            **{"n-shot": lora_shots},
        ),
        results(
            runs / "llama3-tr-r8-a32",
            f"pretrained={LLAMA_DIR},peft=adapters/tr/r8-a32",
            tr_tasks,
            **{"n-shot": tr_shots},
        ),
        results(
            runs / "mistral-instruct",
            "pretrained=mistralai/Mistral-7B-Instruct-v0.1",
            mistral_instruct,
        ),
        judged_mtbench(
            runs / "mistral-tr-r16-a32",
            f"pretrained={MISTRAL},peft=a/tr/r16-a32",
            {"coding": 3.5, "writing": 2.0},
            "gpt-4o-mini",
        ),
        judged_mtbench(
            runs / "mistral-tr-r8-a32",
            f"pretrained={MISTRAL},peft=a/tr/r8-a32",
            {"coding": 2.0, "writing": 2.0},
            "gpt-4-0613",
        ),
        results(
            runs / "other-base",
            "pretrained=/models/my-own-7b",
            other_tasks,
            **{"n-shot": other_shots},
        ),
    ]
    ids = [
        Identity("llama3/base", "llama3", LLAMA_DIR, "base"),
        Identity("llama3/zh/r16-a48", "llama3", LLAMA_DIR, "r16-a48", "zh"),
        Identity("llama3/tr/r8-a32", "llama3", LLAMA_DIR, "r8-a32", "tr"),
        # The grid's base model names the instruct model's family.
        Identity("mistral/instruct", "mistral", MISTRAL, "instruct"),
        Identity("mistral/tr/r16-a32", "mistral", MISTRAL, "r16-a32", "tr"),
        Identity("mistral/tr/r8-a32", "mistral", MISTRAL, "r8-a32", "tr"),
        Identity("other/base", "other", "/models/my-own-7b", "base"),
    ]
    return paths, {i.label: i for i in ids}


def tables(out: Path) -> dict[str, dict]:
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return {t["key"]: t for t in data["tables"]}


def value(table: dict, row: str, column: str) -> float | None:
    return table["rows"][row][table["columns"].index(column)]["value"]


def test_cmmlu_beside_the_published_figures(grid, tmp_path: Path) -> None:
    paths, ids = grid
    out = tmp_path / "r"
    report = build_report(paths, out, names=list(ids), identities=ids, compare="published")
    md = report["markdown"]
    got = tables(out)
    vs = got["cmmlu_lm_eval__llama3_zh_published"]
    lora, base = "llama3/zh/r16-a48", "llama3/base"
    # Llama r16-a48, Table 2: STEM 31.95; ours 40.00 -> +8.05.
    assert value(vs, lora, "STEM") == pytest.approx(0.40)
    assert value(vs, f"{lora} — published", "STEM") == pytest.approx(0.3195)
    assert value(vs, f"{lora} — Δ", "STEM") == pytest.approx(0.0805)
    assert f"| {lora} | 40.00 ± 1.00 | 50.00 ± 1.00 |" in md
    assert f"| {lora} — published | 31.95 | 42.61 | 44.27 | 41.81 | 37.29 |" in md
    assert f"| {lora} — Δ | +8.05 ± 1.00 | +7.39 ± 1.00 |" in md
    assert value(vs, f"{base} — published", "China specific") == pytest.approx(0.2610)
    assert "Table 2 'Llama-ft-rank:16-alpha:48'" in md and "Table 2 'Llama-base'" in md
    note = next(n for n in vs["notes"] if n.startswith("Published:"))
    assert "5-shot" in note
    assert f"{lora}: 0-shot (the study: 5-shot)" in md
    # The groups: base and that language's adapters; the tr adapter's CMMLU is not in zh's.
    assert list(got["cmmlu_lm_eval__llama3_zh"]["rows"]) == [base, lora]
    assert any(n.startswith("llama3/tr/r8-a32: CMMLU") for n in report["notes"])
    # A model named like neither of the study's: no published figures anywhere.
    assert "cmmlu_lm_eval__other_zh_published" not in got
    assert "cmmlu_lm_eval__other_zh" in got
    assert not any("other/base —" in row for t in got.values() for row in t["rows"])
    rows = list(csv.DictReader((out / "report.csv").open(encoding="utf-8")))
    assert not [r for r in rows if r["model"].startswith("other/base —")]
    published = [r for r in rows if r["table"] == "cmmlu_lm_eval__llama3_zh_published"]
    assert {r["model"] for r in published} == {base, f"{base} — published", f"{base} — Δ"} | {
        lora,
        f"{lora} — published",
        f"{lora} — Δ",
    }


def test_mtbench_is_matched_by_preset_not_position(grid, tmp_path: Path) -> None:
    paths, ids = grid
    out = tmp_path / "r"
    md = build_report(paths, out, names=list(ids), identities=ids, compare="published")["markdown"]
    vs = tables(out)["mtbench_tr__mistral_tr_published"]
    # Table 10 (Turkish, Mistral): coding 16/32 2.90, 8/32 2.55; Table 8 means.
    assert value(vs, "mistral/tr/r16-a32 — published", "coding") == pytest.approx(2.90)
    assert value(vs, "mistral/tr/r16-a32 — Δ", "coding") == pytest.approx(0.60)
    assert value(vs, "mistral/tr/r8-a32 — published", "coding") == pytest.approx(2.55)
    assert value(vs, "mistral/tr/r8-a32 — Δ", "coding") == pytest.approx(-0.55)
    assert value(vs, "mistral/tr/r16-a32 — published", "mean") == pytest.approx(2.07)
    assert value(vs, "mistral/tr/r16-a32 — Δ", "mean") == pytest.approx(2.75 - 2.07)
    # The study's "Mistral Baseline" / "Mistral-7b-v0.1" is its instruct model.
    assert value(vs, "mistral/instruct — published", "mean") == pytest.approx(2.51)
    assert value(vs, "mistral/instruct — Δ", "coding") == pytest.approx(0.30)
    assert "Table 8 'Mistral Baseline' (mean)" in md and "Table 10 '16/32'" in md
    assert "| mistral/tr/r8-a32 — Δ | +0.60 | – | – | – | -0.55 |" in md
    # What differs from the study's protocol, as far as the runs tell.
    assert "mistral/tr/r16-a32: judge gpt-4o-mini (the study: GPT-4)" in md
    assert "mistral/tr/r8-a32: judge" not in md  # a GPT-4 snapshot
    assert "mistral/instruct: judge and rubric not recorded" in md


def test_layout_per_model_and_language(grid, tmp_path: Path) -> None:
    paths, ids = grid
    out = tmp_path / "r"
    report = build_report(paths, out, names=list(ids), identities=ids)
    md = report["markdown"]
    got = tables(out)
    assert "## llama3, zh" in md and "## mistral, tr" in md and "## other, zh" in md
    assert "vs. published" not in md  # only on request
    # Differences within a group are to the group's base.
    delta = got["cmmlu_lm_eval__llama3_zh_delta"]
    assert delta["title"].startswith("Δ vs llama3/base:")
    assert value(delta, "llama3/zh/r16-a48", "STEM") == pytest.approx(0.10)
    across = got["across_zh_cmmlu_lm_eval"]
    assert list(across["rows"]) == ["llama3", "other"]
    best = across["rows"]["llama3"][across["columns"].index("best adapter")]
    assert best["note"] == "r16-a48"
    assert "| llama3 | 45.0 ± 0.5 | – | 45.0 ± 0.5 (r16-a48) | +0.0 ± 0.7 | – |" in md
    mt = got["across_tr_mtbench_tr"]
    assert mt["rows"]["mistral"][2]["note"] == "r16-a32"  # mean 2.75 beats 2.00
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["fidelity.png", "language_tr.png", "language_zh.png"]
    assert (out / "language_zh.png").read_bytes()[:4] == b"\x89PNG"


def test_arguments_that_contradict(grid, tmp_path: Path) -> None:
    paths, ids = grid
    with pytest.raises(ValueError, match="needs identities"):
        build_report(paths, tmp_path / "r", compare="published")
    with pytest.raises(ValueError, match="only comparison"):
        build_report(paths, tmp_path / "r", identities=ids, compare="paper")
    wrong = {"llama3/base": Identity("x", "llama3", LLAMA_DIR, "base")}
    with pytest.raises(ValueError, match="labelled 'x'"):
        build_report(paths, tmp_path / "r", identities=wrong)


def test_without_identities_the_layout_is_flat(grid, tmp_path: Path) -> None:
    paths, ids = grid
    report = build_report(paths, tmp_path / "r", names=list(ids))
    assert "## CMMLU" in report["markdown"] and "## llama3, zh" not in report["markdown"]
    assert "vs. published" not in report["markdown"]
    pngs = sorted(p.name for p in (tmp_path / "r").glob("*.png"))
    assert pngs == ["cmmlu.png", "fidelity.png", "mtbench_tr.png", "mtbench_tr_radar.png"]
