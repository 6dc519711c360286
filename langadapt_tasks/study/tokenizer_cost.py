"""What a language costs in tokens: each base model's tokenizer on the language's held-out
text, beside English MT-Bench questions. A tokenizer that needs 2–3× more tokens for the
same text makes training and generation that much dearer.

Per text: tokens per 1,000 UTF-8 bytes, and tokens per word (whitespace-separated), or per
character for a language whose fidelity is measured in Han characters (Chinese). Tokens are
counted without special tokens, over every message of the held-out rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langadapt_tasks.benchmarks.heldout import HeldoutDataError, read_rows
from langadapt_tasks.benchmarks.mtbench import MTBenchDataError, read_questions
from langadapt_tasks.languages.spec import builtin_specs
from langadapt_tasks.report.tables import Cell, Table
from langadapt_tasks.study.config import StudyConfig
from langadapt_tasks.study.heldout import source
from langadapt_train.outputs import HELDOUT

ENGLISH = "en"
NOT_AVAILABLE = "not available"


def per_character(code: str) -> bool:
    spec = builtin_specs().get(code)
    return spec is not None and spec.fidelity == "han"


def measure(tokenizer: Any, texts: list[str], by_character: bool) -> tuple[float, float]:
    """(tokens per 1,000 UTF-8 bytes, tokens per word or character) over ``texts``."""
    tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    size = sum(len(t.encode("utf-8")) for t in texts)
    units = sum(len("".join(t.split())) if by_character else len(t.split()) for t in texts)
    return 1000 * tokens / size, tokens / units


def _tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def cost_table(cfg: StudyConfig, bases: Mapping[str, str], mtbench_dir: str | None) -> Table | None:
    """Per base model: each language's held-out text and English MT-Bench's questions."""
    texts: dict[str, list[str]] = {}
    problems: list[str] = []
    for code in cfg.languages:
        files = {source(cfg, m, code) for m in cfg.models}
        path = next((p / HELDOUT for p in files if p is not None and (p / HELDOUT).is_file()), None)
        if path is not None:
            try:
                texts[code] = [m["content"] for row in read_rows(path) for m in row]
            except HeldoutDataError as err:
                problems.append(str(err))
    if not texts:
        return None
    english = Path(mtbench_dir or "") / ENGLISH / "question.jsonl"
    if mtbench_dir and english.is_file():
        try:
            texts[ENGLISH] = [t for q in read_questions(english) for t in q["turns"]]
        except MTBenchDataError as err:
            problems.append(str(err))
    columns, kinds = [], []
    for code in texts:
        unit = "character" if per_character(code) else "word"
        columns += [
            f"{code or 'held-out'}: tokens / 1,000 bytes",
            f"{code or 'held-out'}: tokens / {unit}",
        ]
        kinds += ["score", "score"]
    table = Table("tokenizer_cost", "Tokenizer cost of each language", columns, kinds)
    for label, model in cfg.models.items():
        first = next((source(cfg, label, c) for c in cfg.languages), None)
        name = (
            str(first)
            if first is not None and (first / "tokenizer_config.json").is_file()
            else bases[label]
        )
        try:
            tokenizer = _tokenizer(name)
        except Exception as err:  # offline, missing: the table says so, the report goes on
            problems.append(
                f"{label or model.base}: tokenizer {name} not loaded ({type(err).__name__})"
            )
            table.rows[label or "base"] = [Cell(None, text=NOT_AVAILABLE)] * len(columns)
            continue
        row = []
        for code, items in texts.items():
            row += [Cell(v) for v in measure(tokenizer, items, per_character(code))]
        table.rows[label or "base"] = row
    table.notes.append(
        "held-out rows of each language (every message) and, for English, MT-Bench's "
        "questions; words are whitespace-separated, Chinese counts characters; no special tokens"
    )
    if ENGLISH not in texts:
        table.notes.append("English MT-Bench questions not found (LANGADAPT_MTBENCH_DIR/en)")
    table.notes += problems
    return table
