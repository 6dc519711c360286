"""Language specs: a language of the MT-Bench tasks is data, not Python.

A spec is a YAML file (``languages/<code>.yaml`` in the package for the shipped
languages, any ``language.yaml`` for your own) with the language's code and
names, its system prompt, how language fidelity is measured, a judge template
per template rubric (checked when the spec is loaded: see
``judge_templates.check_template``), FastChat's judge prompts for the rubric that
sends them (``rubric_registry``: each rubric's ``source``), where its questions come from
and, optionally, its multiple-choice knowledge task. Paths in a spec are relative
to the spec file. See docs/languages.md.

Unknown keys, at the top and in every mapping with fixed keys, are refused with the close
known ones; text that is copied into every generated task, and the files a spec names, are
bounded in size (``MAX_*`` below), each error naming the spec and the field.

Only specs the user named are loaded: the shipped ones, one given on the command
line or in a generated task YAML (``register``), or one listed in
``LANGADAPT_SPECS``. A spec path found in a file (a samples file's ``doc.spec``)
is honoured only if it is one of those (``register(path, trusted=False)``).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langadapt_tasks.files import check_keys, read_yaml_mapping
from langadapt_tasks.languages.fastchat_prompts import read_fastchat_prompts
from langadapt_tasks.languages.judge_templates import TemplateCheckError, check_template
from langadapt_tasks.languages.langid import known_codes
from langadapt_tasks.languages.rubric_registry import RUBRICS, from_source

BUILTIN_DIR = Path(__file__).resolve().parent  # the shipped <code>.yaml specs
# Rubrics rendered from a language's jinja2 templates (``judge_templates``), and those
# that send FastChat's own prompts (``judge_prompts``): as the rubric records say.
TEMPLATE_RUBRICS = tuple(r.name for r in from_source("judge_templates"))
PROMPT_RUBRICS = tuple(r.name for r in from_source("judge_prompts"))
FIDELITY_OFF = "off"
ENV_SPECS = "LANGADAPT_SPECS"  # spec files the user trusts, separated by os.pathsep
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
SPEC_KEYS = (
    "code",
    "name",
    "native_name",
    "system_prompt",
    "fidelity",
    "judge_templates",
    "judge_prompts",
    "questions",
    "multiple_choice",
    "heldout_file",
)
QUESTIONS_KEYS = ("local", "file", "hub", "url", "reference_url")
HUB_KEYS = ("repo", "question", "reference")
JUDGE_PROMPTS_KEYS = ("file", "local", "url")
# Sizes, in bytes of UTF-8 text. The system prompt is copied into each of a language's 16
# MT-Bench task YAMLs and sent with every question; MT-Bench's own prompts are < 200 bytes.
KiB, MiB = 1024, 1024 * 1024
MAX_SYSTEM_PROMPT = 16 * KiB
MAX_NAME = 256  # name, native_name
MAX_MC_DESCRIPTION = 16 * KiB  # multiple_choice.description (the instruction)
MAX_MC_LABEL = 256  # multiple_choice.answer_label, .target_delimiter
MAX_MC_CHOICES = 100
MAX_TEMPLATE = 64 * KiB  # a judge template file (the shipped ones are < 3 KiB)
MAX_JUDGE_PROMPTS = 1 * MiB  # a FastChat judge_prompts.jsonl (FastChat's is < 20 KiB)
MAX_QUESTION_FILE = 16 * MiB  # a question file (MT-Bench's 80 questions: about 50 KiB)
MAX_QUESTION_TEXT = 32 * KiB  # one turn of a question, one reference answer


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
    judge_prompts: Path | None = None  # PROMPT_RUBRICS: a FastChat judge_prompts.jsonl
    judge_prompts_local: str | None = None  # the same, under the MT-Bench directory
    judge_prompts_url: str | None = None  # the same, its public source (downloaded once)
    native_name: str = ""
    local: str | None = None  # folder under the MT-Bench directory
    file: Path | None = None  # a question file of its own
    hub: dict[str, str] = field(default_factory=dict)
    questions_url: str | None = None  # a question file's public source (downloaded once)
    reference_url: str | None = None  # its reference answers' (FastChat's gpt-4.jsonl)
    # An lm-eval task/group name, or the language's own questions (see mc_task).
    multiple_choice: str | MultipleChoice | None = None
    # heldout_langadapt_<code>'s file when none is named (a heldout.jsonl of langadapt-train).
    heldout_file: Path | None = None
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


def check_code(code: str, where: object = "language code") -> str:
    """A language code: 2–8 lowercase letters/digits (it names tasks and folders)."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise LanguageSpecError(
            f"{where}: code {code!r} must be 2–8 lowercase letters/digits, starting with a "
            "letter (e.g. de)"
        )
    return code


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and not n % MiB else f"{n / KiB:g} KiB"


def _bounded(value: Any, key: str, limit: int, where: Path) -> None:
    """Refuse a text field longer than ``limit`` bytes of UTF-8, naming it."""
    if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > limit:
        raise LanguageSpecError(
            f"{where}: '{key}' is {len(value.encode('utf-8', 'surrogatepass')):,} bytes; "
            f"the limit is {limit:,} bytes ({_size(limit)}); see docs/languages.md"
        )


def _bounded_file(file: Path, key: str, limit: int, where: Path) -> None:
    """Refuse a file the spec names that is larger than ``limit`` bytes, naming the field."""
    size = file.stat().st_size
    if size > limit:
        raise LanguageSpecError(
            f"{where}: {key}: {file} is {size:,} bytes; the limit is {limit:,} bytes "
            f"({_size(limit)}); see docs/languages.md"
        )


def _keys(value: Any, known: tuple[str, ...], key: str, where: Path) -> None:
    """Refuse unknown keys of the mapping ``value`` (the spec's ``key``; "" at the top)."""
    if isinstance(value, dict):
        check_keys(value, known, where, LanguageSpecError, key)


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
    _keys(value, MC_KEYS, "multiple_choice", where)
    texts = {k: value.get(k) for k in ("description", "answer_label", "target_delimiter")}
    for key, text in texts.items():
        if text is not None and not isinstance(text, str):
            raise LanguageSpecError(f"{where}: multiple_choice.{key} must be a string")
        limit = MAX_MC_DESCRIPTION if key == "description" else MAX_MC_LABEL
        _bounded(text, f"multiple_choice.{key}", limit, where)
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
        or not 2 <= len(choices) <= MAX_MC_CHOICES
        or len(set(map(str, choices))) != len(choices)
    ):
        raise LanguageSpecError(
            f"{where}: multiple_choice.choices must list two to {MAX_MC_CHOICES} distinct "
            "letters, e.g. [A, B, C, D]"
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
    _keys(data, SPEC_KEYS, "", path)
    for key, known in (
        ("questions", QUESTIONS_KEYS),
        ("judge_prompts", JUDGE_PROMPTS_KEYS),
        ("multiple_choice", MC_KEYS),
    ):
        _keys(data.get(key), known, key, path)
    if isinstance(data.get("questions"), dict):
        _keys(data["questions"].get("hub"), HUB_KEYS, "questions.hub", path)
    code = check_code(str(_require(data, "code", path)), path)
    if data.get("system_prompt") is None:  # "" is allowed: no system message (FastChat's)
        raise LanguageSpecError(f"{path}: 'system_prompt' is missing (\"\" for none)")
    for key in ("name", "native_name", "system_prompt"):
        value = _require(data, key, path) if key == "name" else data.get(key)
        if value is not None and not isinstance(value, str | int | float):
            raise LanguageSpecError(f"{path}: '{key}' must be text")
        _bounded(value, key, MAX_SYSTEM_PROMPT if key == "system_prompt" else MAX_NAME, path)
        _todo(value, key, path)
    resolved = _judge_templates(data.get("judge_templates") or {}, path)
    prompts, prompts_local, prompts_url = _judge_prompts(data.get("judge_prompts"), path)
    if not resolved and prompts is None and prompts_local is None:
        raise LanguageSpecError(
            f"{path}: no judge prompt: give judge_templates (rubrics "
            f"{', '.join(TEMPLATE_RUBRICS)}) and/or judge_prompts (rubric "
            f"{', '.join(PROMPT_RUBRICS)})"
        )
    questions = data.get("questions") or {}
    if not isinstance(questions, dict):
        raise LanguageSpecError(f"{path}: 'questions' must be a mapping (local, file, hub)")
    file = (path.parent / str(questions["file"])).resolve() if questions.get("file") else None
    if file is not None and not file.is_file():
        raise LanguageSpecError(f"{path}: question file {questions['file']} not found")
    if file is not None:
        _bounded_file(file, "questions.file", MAX_QUESTION_FILE, path)
    hub = questions.get("hub") or {}
    if not isinstance(hub, dict):
        raise LanguageSpecError(f"{path}: questions.hub is a mapping ({', '.join(HUB_KEYS)})")
    if hub and not {"repo", "question"} <= set(hub):
        raise LanguageSpecError(f"{path}: questions.hub needs 'repo' and 'question'")
    local = questions.get("local")
    urls = {k: questions.get(k) for k in ("url", "reference_url")}
    for key, url in urls.items():
        if url is not None and not (
            isinstance(url, str) and url.startswith(("https://", "http://"))
        ):
            raise LanguageSpecError(f"{path}: questions.{key} {url!r} must be an http(s) URL")
    if urls["reference_url"] and not urls["url"]:
        raise LanguageSpecError(f"{path}: questions.reference_url goes with questions.url")
    if not (local or file or hub or urls["url"]):
        raise LanguageSpecError(f"{path}: 'questions' names no source (local, file, hub or url)")
    heldout = data.get("heldout_file")
    heldout_path = (path.parent / str(heldout)).resolve() if heldout else None
    if heldout_path is not None and not heldout_path.is_file():
        raise LanguageSpecError(f"{path}: heldout_file {heldout} not found")
    fidelity = data.get("fidelity")
    # YAML 1.1 reads a bare ``off`` as False: that is the documented "off", not "unset".
    fidelity = FIDELITY_OFF if fidelity is False else str(fidelity or code)
    if not builtin and fidelity not in ("han", FIDELITY_OFF) and fidelity not in known_codes():
        raise LanguageSpecError(
            f"{path}: fidelity {fidelity!r} is neither 'han', 'off' nor a language "
            f"py3langid identifies ({', '.join(known_codes())}); use the closest one"
        )
    return LanguageSpec(
        code=code,
        name=str(data["name"]),
        native_name=str(data.get("native_name") or ""),
        system_prompt=str(data["system_prompt"]),
        fidelity=fidelity,
        judge_templates=resolved,
        path=path,
        judge_prompts=prompts,
        judge_prompts_local=prompts_local,
        judge_prompts_url=prompts_url,
        local=str(local) if local else None,
        file=file,
        hub={str(k): str(v) for k, v in hub.items()},
        questions_url=urls["url"],
        reference_url=urls["reference_url"],
        multiple_choice=_multiple_choice(data.get("multiple_choice"), path),
        heldout_file=heldout_path,
        builtin=builtin,
    )


def _judge_templates(templates: Any, path: Path) -> dict[str, Path]:
    """``judge_templates``: rubric -> .j2 file, each checked now (not mid-run)."""
    known = ", ".join(TEMPLATE_RUBRICS)
    if not isinstance(templates, dict):
        raise LanguageSpecError(f"{path}: judge_templates maps rubrics ({known}) to .j2 files")
    for name in templates:
        if name in PROMPT_RUBRICS:  # a rubric of FastChat's own prompts: no template
            fenced = [r.name for r in from_source("judge_templates") if r.hardens == name]
            hint = f"; a template with fenced answers is rubric {fenced[0]!r} (rename the key)"
            raise LanguageSpecError(
                f"{path}: judge_templates.{name}: rubric {name!r} is FastChat's own prompts, "
                "read from a FastChat judge_prompts.jsonl named by 'judge_prompts'"
                + (hint if fenced else "")
            )
    _keys(templates, TEMPLATE_RUBRICS, "judge_templates", path)
    resolved = {}
    for rubric, rel in templates.items():
        _todo(rel, f"judge_templates.{rubric}", path)
        tpl = (path.parent / str(rel)).resolve()
        if not tpl.is_file():
            raise LanguageSpecError(f"{path}: judge template {rel} ({rubric}) not found")
        _bounded_file(tpl, f"judge_templates.{rubric}", MAX_TEMPLATE, path)
        try:
            check_template(tpl, RUBRICS[rubric])
        except TemplateCheckError as err:
            raise LanguageSpecError(f"{path}: judge template {rel} ({rubric}): {err}") from None
        resolved[rubric] = tpl
    return resolved


def _judge_prompts(value: Any, path: Path) -> tuple[Path | None, str | None, str | None]:
    """``judge_prompts``: {file, local, url}: FastChat's judge prompts (``PROMPT_RUBRICS``)."""
    if value in (None, ""):
        return None, None, None
    _keys(value, JUDGE_PROMPTS_KEYS, "judge_prompts", path)
    if not isinstance(value, dict) or not value:
        raise LanguageSpecError(
            f"{path}: judge_prompts is a mapping with 'file' (a FastChat judge_prompts.jsonl, "
            "relative to the spec), 'local' (its path under the MT-Bench directory) and/or "
            "'url' (its public source, downloaded once when no local copy is configured)"
        )
    local = value.get("local")
    if local is not None and (
        not isinstance(local, str) or Path(local).is_absolute() or ".." in Path(local).parts
    ):
        raise LanguageSpecError(f"{path}: judge_prompts.local {local!r} must be a relative path")
    url = value.get("url")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("https://", "http://"))
    ):
        raise LanguageSpecError(f"{path}: judge_prompts.url {url!r} must be an http(s) URL")
    file = None
    if value.get("file"):
        file = (path.parent / str(value["file"])).resolve()
        if not file.is_file():
            raise LanguageSpecError(f"{path}: judge_prompts file {value['file']} not found")
        _bounded_file(file, "judge_prompts.file", MAX_JUDGE_PROMPTS, path)
        try:
            read_fastchat_prompts(file)
        except ValueError as err:
            raise LanguageSpecError(f"{path}: judge_prompts: {err}") from None
    return file, local, url


@functools.cache
def builtin_specs() -> dict[str, LanguageSpec]:
    """The shipped languages (``languages/*.yaml``), by code."""
    specs = [parse_spec(p, builtin=True) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]
    return {s.code: s for s in specs}


_REGISTERED: dict[str, LanguageSpec] = {}
_TRUSTED: set[Path] = set()  # spec files the user named in this process


def _resolve(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def trusted_paths() -> set[Path]:
    """Spec files that may be loaded when a file (not the user) names them."""
    listed = os.environ.get(ENV_SPECS, "")
    return (
        {s.path for s in builtin_specs().values()}
        | _TRUSTED
        | {_resolve(p) for p in listed.split(os.pathsep) if p.strip()}
    )


def register(path: str | Path, *, trusted: bool = True) -> LanguageSpec:
    """Make a user-defined language known to this process (data loading, judge templates).

    ``trusted=True``: the user named ``path`` (a command-line argument, a task YAML they
    included). ``trusted=False``: ``path`` was read from a file, e.g. a samples file's
    ``doc.spec``; it is loaded only if the user named it already (in this process or in
    ``LANGADAPT_SPECS``) or it is a shipped spec, so a file cannot make us run a template
    the user never chose.
    """
    resolved = _resolve(path)
    if not trusted:
        for spec in [*builtin_specs().values(), *_REGISTERED.values()]:
            if spec.path == resolved:
                return spec
        if resolved not in trusted_paths():
            raise LanguageSpecError(
                f"{resolved}: this language spec is named by a file, not by you, so it is not "
                f"loaded. If you trust it, name it: add it to {ENV_SPECS} "
                f"({ENV_SPECS}={resolved}) or pass it on the command line"
            )
    spec = parse_spec(resolved)
    if spec.code in builtin_specs():
        raise LanguageSpecError(f"{spec.path}: code {spec.code!r} is a shipped language")
    _TRUSTED.add(spec.path)
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
