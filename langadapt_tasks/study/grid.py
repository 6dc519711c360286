"""The study's grid: base models × languages × presets, read from the config and named.

```yaml
models:      # label -> its base, optional instruct, optional chat template, overrides
  llama3: {base: meta-llama/Meta-Llama-3-8B, instruct: ..., chat_template: llama3}
languages:   # code -> the training data and the tasks that measure it, overrides
  zh: {data: zh-mix, tasks: [cmmlu_langadapt, mtbench_langadapt_zh]}
```

The one-model form (``base_model``, ``instruct_model``, ``evaluate.tasks``, the data of
``train.config``) is the grid with one unnamed model and one unnamed language, so both
forms run the same code. A label is a path of its non-empty parts: ``llama3/base``,
``llama3/zh/r16-a48``; in the one-model form ``base`` and ``r16-a48``, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langadapt_tasks.files import Fields, path_or_name, shown
from langadapt_train.templates import BUILTIN as BUILTIN_TEMPLATES

MODEL_KEYS = ("base", "instruct", "chat_template", "overrides")
LANGUAGE_KEYS = ("data", "tasks", "overrides")
VARIANTS = ("base", "instruct")  # the evaluated models that are not adapters
_MODEL_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LANGUAGE = re.compile(r"^[a-z][a-z0-9]{1,7}$")


@dataclass(frozen=True)
class GridModel:
    """One base model of the grid (``models.<label>``); label "" in the one-model form."""

    label: str
    base: str  # a folder, a Hub id, or "smollm2" (the embedded model)
    instruct: str | None = None
    chat_template: str | None = None  # for training its adapters (a shipped name or a file)
    overrides: dict[str, Any] = field(default_factory=dict)  # langadapt-train fields


@dataclass(frozen=True)
class GridLanguage:
    """One language of the grid (``languages.<code>``); code "" in the one-model form."""

    code: str
    tasks: tuple[str, ...]
    data: str | None = None  # a mix name or a file; None: train.config's own
    overrides: dict[str, Any] = field(default_factory=dict)


def label(*parts: str) -> str:
    """A model's label: its non-empty parts joined by "/" (also its folder below eval/)."""
    return "/".join(p for p in parts if p)


def _single_values(f: Fields, raw: Any, where: str) -> dict[str, Any]:
    """Overrides: langadapt-train fields, one value each (a flag of the train command)."""
    out = f.mapping(raw, where)
    for key, value in out.items():
        if isinstance(value, (dict, list)) or value is None:
            raise f.bad(f"{where}.{key}", "expected a single value (a langadapt-train flag)")
    return dict(out)


def _chat_template(f: Fields, raw: Any, where: str) -> str:
    text = f.text(raw, where)
    found = path_or_name(text, f.file.parent)
    if isinstance(found, Path):
        if not found.is_file():
            raise f.bad(where, f"{found} is not a file (a jinja chat template)")
        return str(found)
    if text not in BUILTIN_TEMPLATES:
        raise f.bad(
            where,
            f"{text!r} is neither a shipped template ({', '.join(BUILTIN_TEMPLATES)}) nor a "
            "file next to the config",
        )
    return text


def parse_models(f: Fields, raw: Any, model: Any) -> dict[str, GridModel]:
    """``models``: label -> GridModel. ``model(value, where)`` reads a model id or folder."""
    models = f.mapping(raw, "models")
    if not models:
        raise f.bad("models", "expected at least one model: label -> {base: ..., instruct: ...}")
    out = {}
    for name, spec in models.items():
        where = f"models.{name}"
        if not isinstance(name, str) or not _MODEL_LABEL.fullmatch(name) or name in VARIANTS:
            raise f.bad(
                where,
                "a label is letters, digits, '.', '_' or '-' (it names folders), and not "
                f"{' or '.join(VARIANTS)}",
            )
        spec = f.mapping(spec, where, MODEL_KEYS)
        if spec.get("base") in (None, ""):
            raise f.bad(f"{where}.base", "missing: the base model the adapters are trained on")
        instruct = spec.get("instruct")
        template = spec.get("chat_template")
        out[name] = GridModel(
            label=name,
            base=model(spec["base"], f"{where}.base"),
            instruct=None if instruct in (None, "") else model(instruct, f"{where}.instruct"),
            chat_template=(
                None
                if template in (None, "")
                else _chat_template(f, template, f"{where}.chat_template")
            ),
            overrides=_single_values(f, spec.get("overrides"), f"{where}.overrides"),
        )
    return out


def parse_languages(f: Fields, raw: Any, tasks: Any) -> dict[str, GridLanguage]:
    """``languages``: code -> GridLanguage. ``tasks(value, where)`` reads a task list."""
    languages = f.mapping(raw, "languages")
    if not languages:
        raise f.bad("languages", "expected at least one language: code -> {data, tasks}")
    out = {}
    for code, spec in languages.items():
        where = f"languages.{code}"
        if not isinstance(code, str) or not _LANGUAGE.fullmatch(code) or code in VARIANTS:
            raise f.bad(where, "a language code is 2–8 lowercase letters/digits (e.g. zh)")
        spec = f.mapping(spec, where, LANGUAGE_KEYS)
        if spec.get("tasks") in (None, "", []):
            raise f.bad(f"{where}.tasks", "missing: the tasks that measure this language")
        data = spec.get("data")
        if data not in (None, ""):  # a mix name, or a file (the trainer reads and checks it)
            data = str(path_or_name(f.text(data, f"{where}.data"), f.file.parent))
        out[code] = GridLanguage(
            code=code,
            tasks=tuple(tasks(spec["tasks"], f"{where}.tasks")),
            data=data or None,
            overrides=_single_values(f, spec.get("overrides"), f"{where}.overrides"),
        )
    return out


def cell_overrides(
    f: Fields, train: dict[str, Any], model: GridModel, language: GridLanguage
) -> dict[str, Any]:
    """The langadapt-train fields of one cell: train.overrides, then the model's and the
    language's; a field both set differently is an error naming both keys."""
    for key in model.overrides.keys() & language.overrides.keys():
        if model.overrides[key] != language.overrides[key]:
            raise f.bad(
                f"models.{model.label}.overrides.{key}",
                f"{shown(model.overrides[key])} contradicts languages.{language.code}."
                f"overrides.{key} ({shown(language.overrides[key])}); set it in one place",
            )
    return {**train, **model.overrides, **language.overrides}
