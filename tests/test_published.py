"""The study's published figures (``langadapt_tasks/report/published.csv``), number by number
against the study's tables as typed in the reference file beside the checkout."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from langadapt_tasks.report.published import (
    CSV_PATH,
    PublishedDataError,
    published,
    read_published,
    study_model,
)

# The study's tables as printed, kept beside the checkout (never in the repository).
REFERENCE = (
    Path(
        os.environ.get(
            "LANGADAPT_TEST_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference"
        )
    ).resolve()
    / "study-tables.md"
)
LLAMA, MISTRAL = "meta-llama/Meta-Llama-3-8B", "mistralai/Mistral-7B-v0.1"
# Printed labels that are no rank/alpha pair -> variant. The study's text calls "Mistral
# Baseline" (Tables 4, 8) and the "Mistral-7b-v0.1" column (Tables 6, 10) its instruct model.
NAMED = {
    "Mistral-base": "base",
    "Mistral-instruct": "instruct",
    "Llama-base": "base",
    "Llama-instruct": "instruct",
    "Meta-Llama-3-8B base": "base",
    "Llama3 Base": "base",
    "Mistral Baseline": "instruct",
    "Mistral-7b-v0.1": "instruct",
}
# Adapters are named by rank and alpha, in three spellings; matched by those, never by position.
RANK_ALPHA = re.compile(r"rank:(\d+)-alpha:(\d+)|^Rank (\d+), Alpha (\d+)$|^(\d+)/(\d+)$")
CMMLU_HEADINGS = {
    "Stem": "stem",
    "Humanities": "humanities",
    "Social Science": "social_science",
    "Other": "other",
    "China": "china_specific",
}


def variant(label: str) -> str:
    if label in NAMED:
        return NAMED[label]
    m = RANK_ALPHA.search(label)
    assert m, f"printed label {label!r} is neither a named model nor a rank/alpha pair"
    rank, alpha = (g for g in m.groups() if g)
    return f"r{rank}-a{alpha}"


def reference_text() -> str:
    if not REFERENCE.is_file():
        pytest.skip(
            f"the study's tables ({REFERENCE}) are not here; set LANGADAPT_TEST_REFERENCE to "
            "the folder holding study-tables.md"
        )
    return REFERENCE.read_text(encoding="utf-8")


def reference_figures(text: str) -> dict[tuple[str, str, str, str, str], tuple[int, str, str]]:
    """(benchmark, language, base model, variant, category) -> (table, value, printed label),
    from the Markdown tables under each "Table N: caption" line."""
    out: dict[tuple[str, str, str, str, str], tuple[int, str, str]] = {}
    lines = text.splitlines()
    benchmark = ""
    for i, line in enumerate(lines):
        if line.startswith("## "):
            benchmark = "cmmlu" if "CMMLU" in line else "mtbench" if "MT-Bench" in line else ""
        m = re.match(r"^Table (\d+): (.+)$", line)
        if not m:
            continue
        number, caption = int(m.group(1)), m.group(2)
        language = "tr" if "Turkish" in caption else "zh"  # CMMLU's are Chinese
        model = MISTRAL if "Mistral" in caption else LLAMA if "Llama" in caption else None
        assert benchmark and model, f"Table {number}: caption {caption!r} not understood"
        rows = []
        for row in lines[i + 1 :]:
            if row.startswith("Table ") or row.startswith("#"):
                break
            if row.startswith("|") and not re.fullmatch(r"[|\-\s]+", row):
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
        head, body = rows[0], rows[1:]
        cells: list[tuple[str, str, str]] = []  # (printed model label, category, value)
        if head[0] == "model":  # CMMLU: a row per model, a column per category
            for row in body:
                cells += [
                    (row[0], CMMLU_HEADINGS[h], v) for h, v in zip(head[1:], row[1:], strict=True)
                ]
        elif head[0] == "category":  # MT-Bench by category: a column per model
            for row in body:
                cells += [(h, row[0].lower(), v) for h, v in zip(head[1:], row[1:], strict=True)]
        else:  # MT-Bench means: a column per model, one row
            (row,) = body
            cells += [(h, "mean", v) for h, v in zip(head, row, strict=True)]
        for label, category, value in cells:
            key = (benchmark, language, model, variant(label), category)
            assert key not in out, f"Table {number}: {key} twice"
            out[key] = (number, value, label)
    return out


def shipped_rows() -> list[dict[str, str]]:
    with CSV_PATH.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_published_number_is_the_studys() -> None:
    reference = reference_figures(reference_text())
    rows = shipped_rows()
    assert len(reference) == 2 * 25 + 4 * 4 + 4 * 32  # Tables 1–2, 3/4/7/8, 5/6/9/10
    assert len(rows) == len(reference)
    for line, row in enumerate(rows, start=2):
        key = (row["benchmark"], row["language"], row["base_model"], row["variant"])
        key += (row["category"],)
        assert key in reference, f"published.csv line {line}: {key} is in none of the tables"
        table, value, label = reference[key]
        assert (int(row["table"]), row["value"], row["printed_label"]) == (table, value, label), (
            f"published.csv line {line}"
        )
    assert {
        (r["benchmark"], r["language"], r["base_model"], r["variant"], r["category"]) for r in rows
    } == set(reference)


def test_table_10_is_matched_by_rank_and_alpha() -> None:
    reference = reference_figures(reference_text())
    assert reference[("mtbench", "tr", MISTRAL, "r16-a32", "coding")] == (10, "2.90", "16/32")
    assert reference[("mtbench", "tr", MISTRAL, "r8-a32", "coding")] == (10, "2.55", "8/32")
    assert published(MISTRAL, "r16-a32", "tr", "mtbench")["coding"].value == 2.90
    assert published(MISTRAL, "r8-a32", "tr", "mtbench")["coding"].value == 2.55


def test_lookup_by_hub_id_or_folder() -> None:
    got = published("/models/Meta-Llama-3-8B", "r16-a48", "zh", "cmmlu")
    assert sorted(got) == sorted(
        ["stem", "humanities", "social_science", "other", "china_specific"]
    )
    assert (got["stem"].value, got["stem"].table) == (31.95, 2)
    assert got["stem"].printed_label == "Llama-ft-rank:16-alpha:48"
    assert published("META-LLAMA/meta-llama-3-8b", "base", "tr", "mtbench")["mean"].value == 1.37
    # The study's Mistral "baseline" on MT-Bench is its instruct model.
    assert published(MISTRAL, "instruct", "zh", "mtbench")["mean"].printed_label == (
        "Mistral Baseline"
    )
    assert published(MISTRAL, "base", "zh", "mtbench") == {}
    assert len(published(LLAMA, "r8-a32", "tr", "mtbench")) == 9  # 8 categories and the mean
    assert study_model("mistralai/Mistral-7B-Instruct-v0.1") is None
    assert study_model("/models/my-finetune") is None
    assert published("/models/my-finetune", "base", "zh", "cmmlu") == {}
    assert published(LLAMA, "r16-a48", "tr", "cmmlu") == {}  # CMMLU: Chinese adapters only


def test_a_malformed_row_is_refused_naming_its_line(tmp_path: Path) -> None:
    lines = CSV_PATH.read_text(encoding="utf-8").splitlines()
    assert len(read_published(CSV_PATH)) == len(lines) - 1
    cases = {
        "1,cmmlu,zh,mistralai/Mistral-7B-v0.1,base,stem,abc,Mistral-base": "not a number",
        "1,cmmlu,zh,mistralai/Mistral-7B-v0.1,r4-a8,stem,31.84,Mistral-base": "variant 'r4-a8'",
        "1,cmmlu,tr,mistralai/Mistral-7B-v0.1,base,stem,31.84,Mistral-base": "language 'tr'",
        "1,cmmlu,zh,mistralai/Mistral-7B-v0.1,base,stem,31.84": "7 fields",
        "1,cmmlu,zh,mistralai/Mistral-7B-v0.1,base,stem,131.84,Mistral-base": "outside 0–100",
        lines[1]: "the same figure as line 2",
    }
    for bad, why in cases.items():
        path = tmp_path / "published.csv"
        path.write_text("\n".join([*lines[:3], bad, *lines[3:]]) + "\n", encoding="utf-8")
        with pytest.raises(PublishedDataError, match=rf"published\.csv, line 4: .*{why}"):
            read_published(path)
    path.write_text("table,value\n", encoding="utf-8")
    with pytest.raises(PublishedDataError, match="line 1: the header"):
        read_published(path)
