"""Judge templates: the jinja2 files a language spec names, rendered in jinja2's sandbox.

A template's output is the judge's user message; an optional ``system()`` macro is the
system message and a ``reask()`` macro the follow-up sent when a reply cannot be parsed.
``check_template`` refuses a bad template when its spec is loaded, not mid-run.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from langadapt_tasks.languages.rubric_registry import Rubric, rubric_named
from langadapt_tasks.paths import PACKAGE_DIR

TEMPLATE_DIR = PACKAGE_DIR / "templates" / "judge"
# What a template may read (besides names it sets itself).
VARIABLES = frozenset({"turn", "questions", "answers", "tags", "reference", "category"})


def answer_tag(answer: str) -> str:
    return "ANSWER-" + hashlib.sha256(answer.encode("utf-8")).hexdigest()[:16].upper()


class TemplateCheckError(ValueError):
    """A judge template that cannot be used (syntax, variables, macros, fence, unsafe)."""


@functools.cache
def _env(folder: Path) -> jinja2.Environment:
    # Sandboxed: a template cannot reach Python internals (``cycler.__init__.__globals__``).
    # The language's own folder first; then the shipped templates, so that a
    # language's template can include the shared ones (``_fastchat.j2``).
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([folder, TEMPLATE_DIR]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # plain-text prompts, not HTML
    )


def load_template(path: Path) -> jinja2.Template:
    return _env(path.parent).get_template(path.name)


def render_messages(tpl: jinja2.Template, context: dict[str, Any]) -> list[dict[str, str]]:
    """System message (the ``system()`` macro, if any), then the user message."""
    module = tpl.make_module(context)
    messages = []
    system = getattr(module, "system", None)
    if callable(system):
        messages.append({"role": "system", "content": str(system()).strip()})
    messages.append({"role": "user", "content": str(module).strip()})
    return messages


def reask_text(tpl: jinja2.Template) -> str:
    blank = {
        "turn": 1,
        "questions": ["", ""],
        "answers": [""],
        "tags": [""],
        "reference": [],
        "category": "",
    }
    module = tpl.make_module(blank)
    return str(module.reask()).strip()  # type: ignore[attr-defined]


def _sample_contexts() -> list[dict[str, Any]]:
    out = []
    for turn in (1, 2):
        answers = [f"ANSWER-TEXT-{i} <<<x>>>" for i in range(1, turn + 1)]
        for reference in ([], ["REFERENCE-1", "REFERENCE-2"]):
            out.append(
                {
                    "turn": turn,
                    "questions": ["QUESTION-1", "QUESTION-2"],
                    "answers": answers,
                    "tags": [answer_tag(a) for a in answers],
                    "reference": reference,
                    "category": "math" if reference else "writing",
                }
            )
    return out


def check_template(path: Path, rubric: Rubric | str) -> None:
    """Refuse a template that would fail or mislead at judging time.

    Syntax; variables other than ``VARIABLES`` (and names it sets); a missing or
    empty ``reask()`` macro; for guarded rubrics (``rubric.guarded``), an answer
    outside its fence; and
    anything jinja2's sandbox refuses. Raises TemplateCheckError saying which.
    """
    from jinja2 import meta

    rubric = rubric_named(rubric)
    env = _env(path.parent)
    try:
        source = path.read_text(encoding="utf-8")
        unknown = sorted(meta.find_undeclared_variables(env.parse(source)) - VARIABLES)
        tpl = env.get_template(path.name)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateCheckError(f"syntax error, line {err.lineno}: {err.message}") from None
    except (OSError, UnicodeDecodeError, jinja2.TemplateError) as err:
        raise TemplateCheckError(f"cannot be read ({err})") from None
    if unknown:
        raise TemplateCheckError(
            f"uses undefined variable(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(VARIABLES))}"
        )
    for context in _sample_contexts():
        where = f"turn {context['turn']}" + (", with references" if context["reference"] else "")
        try:
            messages = render_messages(tpl, context)
            macro = getattr(tpl.make_module(context), "reask", None)
            reask = str(macro()).strip() if callable(macro) else ""
        except jinja2.exceptions.SecurityError as err:
            raise TemplateCheckError(f"unsafe, refused by jinja2's sandbox ({err})") from None
        except jinja2.TemplateError as err:
            raise TemplateCheckError(f"fails to render ({where}): {err}") from None
        if not reask:
            raise TemplateCheckError(
                "defines no reask() macro (the follow-up when a reply has no valid score), "
                "or it is empty"
            )
        if rubric.guarded:
            user = messages[-1]["content"]
            for answer, tag in zip(context["answers"], context["tags"], strict=True):
                fenced = re.findall(rf"<<<{tag}>>>\s*{re.escape(answer)}\s*<<<END-{tag}>>>", user)
                if len(fenced) != 1 or user.count(answer) != 1:
                    raise TemplateCheckError(
                        f"rubric {rubric.name} must show each answer once, between "
                        "<<<{{ tags[i] }}>>> and <<<END-{{ tags[i] }}>>> "
                        f"({where}: an answer is not fenced)"
                    )
