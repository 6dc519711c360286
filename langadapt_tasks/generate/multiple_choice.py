"""The multiple-choice task of a language spec's own questions: ``mc_langadapt_<code>``.

When a spec's ``multiple_choice`` is a mapping (test file, optional dev file,
choice letters, instruction, answer label), ``langadapt language-yamls`` writes
one pure-YAML lm-eval task that reads the files with lm-eval's built-in
``json``/``csv`` loaders: no Python of the language's own. Every row is checked
first, so a bad row fails here with its file and line, not inside ``lm_eval``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from langadapt_tasks.files import iter_jsonl, read_text
from langadapt_tasks.languages.spec import (
    MC_COLUMNS,
    LanguageSpec,
    LanguageSpecError,
    MultipleChoice,
    mc_task_name,
)

METRICS = [
    {"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")
]
Row = tuple[str, dict[str, Any]]  # (where: "line 3" / "item 3", the row)


def _literal(text: str) -> str:
    """``text`` inside a Jinja template, printed as is."""
    return f"{{% raw %}}{text}{{% endraw %}}" if any(t in text for t in "{%#}") else text


def read_rows(path: Path) -> list[Row]:
    """The rows of a ``.jsonl``, ``.json`` (array) or ``.csv`` file, each with its location."""
    if path.suffix.lower() == ".csv":
        rows: list[Row] = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                if None in row:
                    raise LanguageSpecError(
                        f"{path}, line {reader.line_num}: more cells than the header has columns"
                    )
                rows.append((f"line {reader.line_num}", row))
        return rows
    text = read_text(path, LanguageSpecError) if path.suffix.lower() == ".json" else ""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise LanguageSpecError(f"{path}: not JSON ({err})") from err
        rows = [(f"item {i}", item) for i, item in enumerate(items, 1)]
    else:  # JSON lines (datasets' json loader reads a .json file of lines too)
        lines = iter_jsonl(path, LanguageSpecError, objects=False)
        rows = [(f"line {number}", row) for number, row in lines]
    for where, row in rows:
        if not isinstance(row, dict):
            raise LanguageSpecError(f"{path}, {where}: expected an object of columns")
    return rows


def check_file(path: Path, mc: MultipleChoice) -> list[Row]:
    """Every row has a question, one text per choice and an answer among the choices."""
    rows = read_rows(path)
    if not rows:
        raise LanguageSpecError(f"{path}: no rows")
    needed = (MC_COLUMNS[0], *mc.choices, MC_COLUMNS[1])
    for where, row in rows:
        for column in needed:
            value = row.get(column)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                problem = "is missing" if value is None else "must be text"
                raise LanguageSpecError(
                    f"{path}, {where}: column {column!r} {problem}; each row needs "
                    f"{', '.join(needed)}"
                )
            if not str(value).strip():
                raise LanguageSpecError(f"{path}, {where}: column {column!r} is empty")
        answer = str(row[MC_COLUMNS[1]]).strip()
        if answer not in mc.choices:
            raise LanguageSpecError(
                f"{path}, {where}: answer {answer!r} is not one of {', '.join(mc.choices)}; "
                "write the letter of the right choice"
            )
    return rows


def check_rows(mc: MultipleChoice) -> None:
    """Check the test and dev files (run before writing the task; lm_eval fails obscurely)."""
    test = check_file(mc.test, mc)
    if mc.dev is None:
        return
    dev = check_file(mc.dev, mc)
    if len(dev) < mc.num_fewshot:
        raise LanguageSpecError(
            f"{mc.dev}: {len(dev)} rows, fewer than num_fewshot ({mc.num_fewshot}); "
            "add few-shot examples or lower multiple_choice.num_fewshot"
        )
    # One loader reads both files into one schema: their columns must match.
    columns = [sorted({c for _, row in rows for c in row}) for rows in (test, dev)]
    if columns[0] != columns[1]:
        raise LanguageSpecError(
            f"{mc.dev}: columns {columns[1]} differ from {mc.test}'s {columns[0]}; "
            "give both files the same columns"
        )


def mc_config(spec: LanguageSpec) -> dict:
    """The lm-eval task YAML of a spec's own multiple-choice questions."""
    mc = spec.multiple_choice
    assert isinstance(mc, MultipleChoice)
    files = {"test": str(mc.test), **({"dev": str(mc.dev)} if mc.dev else {})}
    kwargs: dict[str, Any] = {"data_files": files}
    if mc.loader == "csv":
        kwargs["na_filter"] = False  # a choice "NA" or "None" stays text
    lines = [
        "{{ question | trim }}",
        *(f"{c}. {{{{ {c} | trim }}}}" for c in mc.choices),
        _literal(mc.answer_label),
    ]
    config: dict[str, Any] = {
        "task": mc_task_name(spec.code),
        "dataset_path": mc.loader,
        "dataset_kwargs": kwargs,
        "test_split": "test",
    }
    if mc.dev:
        config |= {"fewshot_split": "dev", "fewshot_config": {"sampler": "first_n"}}
    config |= {
        "num_fewshot": mc.num_fewshot,
        "output_type": "multiple_choice",
        "doc_to_text": "\n".join(lines),
        "doc_to_choice": list(mc.choices),
        # An index: lm-eval takes a rendered number as the position in doc_to_choice.
        "doc_to_target": f"{{{{ {list(mc.choices)!r}.index(answer | string | trim) }}}}",
        "target_delimiter": mc.target_delimiter,
        "fewshot_delimiter": "\n\n",
    }
    if mc.description:
        config["description"] = _literal(mc.description) + "\n\n"
    return {**config, "metric_list": METRICS, "metadata": {"version": 1.0}}


def mc_configs(spec: LanguageSpec) -> dict[str, dict]:
    """File name -> YAML content: the generated task, or nothing for a named lm-eval task."""
    if not isinstance(spec.multiple_choice, MultipleChoice):
        return {}
    check_rows(spec.multiple_choice)
    return {f"{mc_task_name(spec.code)}.yaml": mc_config(spec)}
