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

from langadapt_tasks.config_files import read_yaml_mapping

BUILTIN_DIR = Path(__file__).resolve().parent / "languages"
RUBRICS = ("paper", "fastchat")
_CODE = re.compile(r"^[a-z][a-z0-9]{1,7}$")
# Multiple-choice data files: suffix -> the lm-eval/datasets loader that reads them.
MC_LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv"}
MC_KEYS = (
    "test",
    "dev",
    "choices",
    "description",
    "answer_label",
    "target_delimiter",
    "num_fewshot",
)
MC_COLUMNS = ("question", "answer")  # besides one column per choice


class LanguageSpecError(ValueError):
    """A language spec is missing, malformed or names a file that does not exist."""


def mc_task_name(code: str) -> str:
    """The generated multiple-choice task of a language (the mapping form)."""
    return f"mc_langadapt_{code}"


@dataclass(frozen=True)
class MultipleChoice:
    """The mapping form of ``multiple_choice``: the language's own questions."""

    test: Path
    dev: Path | None = None
    choices: tuple[str, ...] = ("A", "B", "C", "D")
    description: str = ""
    answer_label: str = "Answer:"
    target_delimiter: str = " "
    num_fewshot: int = 0

    @property
    def loader(self) -> str:
        """``dataset_path`` of the generated task: ``json`` or ``csv``."""
        return MC_LOADERS[self.test.suffix.lower()]


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
    # An lm-eval task/group name, or the language's own questions (see mc_task).
    multiple_choice: str | MultipleChoice | None = None
    builtin: bool = False

    @property
    def mc_task(self) -> str | None:
        """The lm-eval task or group of the language's multiple-choice knowledge, if any."""
        if isinstance(self.multiple_choice, MultipleChoice):
            return mc_task_name(self.code)
        return self.multiple_choice


def _require(data: dict[str, Any], key: str, where: Path) -> Any:
    value = data.get(key)
    if value in (None, ""):
        raise LanguageSpecError(f"{where}: '{key}' is missing")
    return value


def _todo(value: Any, key: str, where: Path) -> None:
    if isinstance(value, str) and "TODO" in value:
        raise LanguageSpecError(f"{where}: '{key}' still says TODO; fill it in")


def _is_name(choice: str) -> bool:
    """Whether ``{{ choice }}`` in a Jinja template reads the column ``choice``."""
    import jinja2
    from jinja2 import nodes

    try:
        body = jinja2.Environment().parse(f"{{{{ {choice} }}}}").body
    except jinja2.TemplateSyntaxError:
        return False
    out = body[0] if len(body) == 1 else None
    return (
        isinstance(out, nodes.Output)
        and len(out.nodes) == 1
        and isinstance(out.nodes[0], nodes.Name)
        and out.nodes[0].name == choice
    )


def _mc_file(rel: Any, key: str, where: Path) -> Path:
    _todo(rel, f"multiple_choice.{key}", where)
    file = (where.parent / str(rel)).resolve()
    if file.suffix.lower() not in MC_LOADERS:
        raise LanguageSpecError(
            f"{where}: multiple_choice.{key} {rel} must be a {', '.join(MC_LOADERS)} file"
        )
    if not file.is_file():
        raise LanguageSpecError(f"{where}: multiple_choice.{key} file {rel} not found")
    return file


def _multiple_choice(value: Any, where: Path) -> str | MultipleChoice | None:
    """``multiple_choice``: an lm-eval task name, or a mapping describing the questions."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        _todo(value, "multiple_choice", where)
        return value
    if not isinstance(value, dict):
        raise LanguageSpecError(
            f"{where}: 'multiple_choice' is an lm-eval task name or a mapping "
            f"({', '.join(MC_KEYS)})"
        )
    unknown = sorted(set(value) - set(MC_KEYS))
    if unknown:
        raise LanguageSpecError(
            f"{where}: multiple_choice has unknown keys {unknown}; known: {', '.join(MC_KEYS)}"
        )
    texts = {k: value.get(k) for k in ("description", "answer_label", "target_delimiter")}
    for key, text in texts.items():
        if text is not None and not isinstance(text, str):
            raise LanguageSpecError(f"{where}: multiple_choice.{key} must be a string")
        _todo(text, f"multiple_choice.{key}", where)
    test = _mc_file(_require(value, "test", where), "test", where)
    dev = _mc_file(value["dev"], "dev", where) if value.get("dev") else None
    if dev is not None and MC_LOADERS[dev.suffix.lower()] != MC_LOADERS[test.suffix.lower()]:
        raise LanguageSpecError(
            f"{where}: multiple_choice.dev and .test are read by one loader: both CSV or both JSON"
        )
    choices = value.get("choices", list(MultipleChoice.choices))
    if (
        not isinstance(choices, list)
        or len(choices) < 2
        or len(set(map(str, choices))) != len(choices)
    ):
        raise LanguageSpecError(
            f"{where}: multiple_choice.choices must list two or more distinct letters, "
            "e.g. [A, B, C, D]"
        )
    for choice in choices:
        _todo(choice, "multiple_choice.choices", where)
        if not isinstance(choice, str) or not _is_name(choice) or choice in MC_COLUMNS:
            raise LanguageSpecError(
                f"{where}: multiple_choice choice {choice!r} is also its column's name, so it "
                "must be a name (letters, digits, _; not starting with a digit; not "
                f"{'/'.join(MC_COLUMNS)}), e.g. A or Б"
            )
    shots = value.get("num_fewshot", 5 if dev else 0)
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 0:
        raise LanguageSpecError(f"{where}: multiple_choice.num_fewshot must be a whole number ≥ 0")
    if shots and dev is None:
        raise LanguageSpecError(
            f"{where}: multiple_choice.num_fewshot is {shots} but there is no 'dev' file of "
            "few-shot examples; add one or set num_fewshot: 0"
        )
    return MultipleChoice(
        test=test,
        dev=dev,
        choices=tuple(choices),
        description=texts["description"] or "",
        answer_label=texts["answer_label"] or MultipleChoice.answer_label,
        target_delimiter=(
            MultipleChoice.target_delimiter
            if texts["target_delimiter"] is None
            else texts["target_delimiter"]
        ),
        num_fewshot=shots,
    )


def parse_spec(path: Path, builtin: bool = False) -> LanguageSpec:
    """Read and check one spec file."""
    path = Path(path).resolve()
    data = read_yaml_mapping(path, LanguageSpecError, "a mapping of spec fields")
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
        multiple_choice=_multiple_choice(data.get("multiple_choice"), path),
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
