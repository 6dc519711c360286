"""Language specs: a language of the MT-Bench tasks is data, not Python.

A spec is a YAML file (``languages/<code>.yaml`` in the package for the shipped
languages, any ``language.yaml`` for your own) with the language's code and
names, its system prompt, how language fidelity is measured, a judge template
per rubric, where its questions come from and, optionally, its multiple-choice
knowledge task. Paths in a spec are relative to the spec file. See
docs/languages.md.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BUILTIN_DIR = Path(__file__).resolve().parent / "languages"
RUBRICS = ("paper", "fastchat")
_CODE = re.compile(r"^[a-z][a-z0-9]{1,7}$")


class LanguageSpecError(ValueError):
    """A language spec is missing, malformed or names a file that does not exist."""


@dataclass(frozen=True)
class LanguageSpec:
    code: str
    name: str
    system_prompt: str
    fidelity: str  # "han", "off", or a py3langid language code
    judge_templates: dict[str, Path]
    path: Path
    native_name: str = ""
    local: str | None = None  # folder under the MT-Bench directory
    file: Path | None = None  # a question file of its own
    hub: dict[str, str] = field(default_factory=dict)
    multiple_choice: str | None = None
    builtin: bool = False


def _require(data: dict[str, Any], key: str, where: Path) -> Any:
    value = data.get(key)
    if value in (None, ""):
        raise LanguageSpecError(f"{where}: '{key}' is missing")
    return value


def _todo(value: Any, key: str, where: Path) -> None:
    if isinstance(value, str) and "TODO" in value:
        raise LanguageSpecError(f"{where}: '{key}' still says TODO; fill it in")


def parse_spec(path: Path, builtin: bool = False) -> LanguageSpec:
    """Read and check one spec file."""
    path = Path(path).resolve()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise LanguageSpecError(f"{path}: cannot be read ({err})") from err
    except yaml.YAMLError as err:
        raise LanguageSpecError(f"{path}: not YAML ({err})") from err
    if not isinstance(data, dict):
        raise LanguageSpecError(f"{path}: expected a mapping of spec fields")
    code = str(_require(data, "code", path))
    if not _CODE.match(code):
        raise LanguageSpecError(f"{path}: code {code!r} must be 2–8 lowercase letters/digits")
    for key in ("name", "system_prompt"):
        _todo(_require(data, key, path), key, path)
    templates = _require(data, "judge_templates", path)
    if not isinstance(templates, dict) or not set(templates) <= set(RUBRICS) or not templates:
        raise LanguageSpecError(f"{path}: judge_templates maps rubrics {RUBRICS} to .j2 files")
    resolved = {}
    for rubric, rel in templates.items():
        tpl = (path.parent / str(rel)).resolve()
        if not tpl.is_file():
            raise LanguageSpecError(f"{path}: judge template {rel} ({rubric}) not found")
        resolved[rubric] = tpl
    questions = data.get("questions") or {}
    if not isinstance(questions, dict):
        raise LanguageSpecError(f"{path}: 'questions' must be a mapping (local, file, hub)")
    file = (path.parent / str(questions["file"])).resolve() if questions.get("file") else None
    if file is not None and not file.is_file():
        raise LanguageSpecError(f"{path}: question file {questions['file']} not found")
    hub = questions.get("hub") or {}
    if hub and not {"repo", "question"} <= set(hub):
        raise LanguageSpecError(f"{path}: questions.hub needs 'repo' and 'question'")
    local = questions.get("local")
    if not (local or file or hub):
        raise LanguageSpecError(f"{path}: 'questions' names no source (local, file or hub)")
    fidelity = str(data.get("fidelity") or code)
    if not builtin and fidelity != "han":
        from langadapt_tasks.fidelity import known_codes

        if fidelity not in known_codes():
            raise LanguageSpecError(
                f"{path}: fidelity {fidelity!r} is neither 'han' nor a language py3langid "
                f"identifies ({', '.join(known_codes())}); use the closest one"
            )
    return LanguageSpec(
        code=code,
        name=str(data["name"]),
        native_name=str(data.get("native_name") or ""),
        system_prompt=str(data["system_prompt"]),
        fidelity=fidelity,
        judge_templates=resolved,
        path=path,
        local=str(local) if local else None,
        file=file,
        hub={str(k): str(v) for k, v in hub.items()},
        multiple_choice=data.get("multiple_choice") or None,
        builtin=builtin,
    )


@functools.cache
def builtin_specs() -> dict[str, LanguageSpec]:
    """The shipped languages (``languages/*.yaml``), by code."""
    specs = [parse_spec(p, builtin=True) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]
    return {s.code: s for s in specs}


_REGISTERED: dict[str, LanguageSpec] = {}


def register(path: str | Path) -> LanguageSpec:
    """Make a user-defined language known to this process (data loading, judge templates)."""
    spec = parse_spec(Path(path))
    if spec.code in builtin_specs():
        raise LanguageSpecError(f"{spec.path}: code {spec.code!r} is a shipped language")
    _REGISTERED[spec.code] = spec
    return spec


def get(code: str) -> LanguageSpec:
    spec = builtin_specs().get(code) or _REGISTERED.get(code)
    if spec is None:
        known = ", ".join([*builtin_specs(), *_REGISTERED])
        raise LanguageSpecError(
            f"unknown MT-Bench language {code!r}; known: {known}. A language of your own needs "
            "its spec: generate its task YAMLs with `langadapt language-yamls`"
        )
    return spec
