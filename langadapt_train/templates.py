"""Chat templates and the tokenization that training sees.

The template used for training is saved into the adapter directory with the
tokenizer, so ``lm_eval ... tokenizer=<adapter> --apply_chat_template`` renders
prompts exactly as training did.

Assistant-only loss: TRL's ``assistant_only_loss`` needs ``{% generation %}``
markers, and ``trl.chat_template_utils.get_training_chat_template`` can add them
only for a fixed list of known templates (SmolLM2's, for one, is not in it).
So conversations are tokenized here: each assistant turn's character span is
found by rendering the conversation up to that turn (with the generation
prompt) and up to its end, and tokens inside those spans get
``assistant_masks = 1``. TRL's collator turns the masks into labels (-100
elsewhere), and does the truncation bookkeeping, packing and padding-free
batching. The span includes the end-of-turn token, so the model learns to stop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.exceptions import TemplateError as JinjaError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
BUILTIN = {"llama3": "llama3.jinja", "mistral": "mistral.jinja"}

Messages = list[dict[str, str]]


class TemplateError(ValueError):
    """No usable chat template, or one that cannot mark assistant turns."""


@dataclass(frozen=True)
class ChosenTemplate:
    name: str  # "tokenizer", a builtin name, or the file path
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def builtin_text(name: str) -> str:
    return (TEMPLATE_DIR / BUILTIN[name]).read_text("utf-8")


def choose(spec: str | None, tokenizer: Any) -> ChosenTemplate:
    """``spec``: None (the tokenizer's own), a builtin name, or a jinja file path."""
    if spec is None:
        own = tokenizer.chat_template
        if isinstance(own, dict):
            own = own.get("default")
        if not own:
            raise TemplateError(
                "the tokenizer has no chat template (a base model?); choose one with "
                f"--chat-template {'|'.join(BUILTIN)} or --chat-template PATH.jinja"
            )
        return ChosenTemplate("tokenizer", own)
    if spec in BUILTIN:
        return ChosenTemplate(spec, builtin_text(spec))
    path = Path(spec).expanduser()
    if path.is_file():
        return ChosenTemplate(str(path), path.read_text("utf-8"))
    raise TemplateError(
        f"config key 'chat_template': {spec!r} is neither a builtin template "
        f"({', '.join(BUILTIN)}) nor a file"
    )


def install(tokenizer: Any, template: ChosenTemplate) -> None:
    """Make ``template`` the tokenizer's chat template; a pad token is set if missing."""
    tokenizer.chat_template = template.text
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def describe(template: ChosenTemplate | None) -> str:
    """How messages name a template: its file, its builtin name, or the tokenizer's."""
    if template is None:
        return "the chat template"
    if template.name == "tokenizer":
        return "the tokenizer's own chat template"
    if template.name in BUILTIN:
        return f"the builtin chat template {template.name!r}"
    return f"chat template file {template.name}"


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line an error was raised on (jinja puts template frames in tracebacks)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_error(err: Exception, template: ChosenTemplate | None) -> TemplateError:
    """The documented error for a template that cannot be rendered: the template's file (or
    name), the line, and what Jinja said."""
    said = str(err.message if isinstance(err, JinjaError) else err).rstrip(".")
    if isinstance(err, TemplateSyntaxError):
        line, why = err.lineno, f"not valid Jinja ({said})"
    else:
        line = _template_line(err.__traceback__)
        if isinstance(err, SecurityError):
            why = f"refused by Jinja's sandbox ({said})"
        else:
            why = f"rendering a training conversation failed ({type(err).__name__}: {said})"
    where = describe(template) + (f", line {line}" if line else "")
    key = "config key 'chat_template': " if template and template.name != "tokenizer" else ""
    return TemplateError(f"{key}{where}: {why}. Fix the template or choose another one")


def render(
    tokenizer: Any,
    messages: Messages,
    generation_prompt: bool = False,
    template: ChosenTemplate | None = None,
) -> str:
    """The conversation as text. A template that cannot be rendered (not valid Jinja, refused
    by the sandbox transformers renders in, or failing in its own code) is a
    :class:`TemplateError` naming ``template`` and the line."""
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
    except Exception as err:
        # Jinja's own errors, and any other raised by the template's code; not the rest.
        if isinstance(err, JinjaError) or _template_line(err.__traceback__) is not None:
            raise _render_error(err, template) from err
        raise


def assistant_spans(
    tokenizer: Any, messages: Messages, template: ChosenTemplate | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    text = render(tokenizer, messages, template=template)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = (
            render(tokenizer, messages[:i], generation_prompt=True, template=template) if i else ""
        )
        through = render(tokenizer, messages[: i + 1], template=template)
        if not (through.startswith(before) and text.startswith(through)):
            raise TemplateError(
                "the chat template is not prefix-preserving (rendering a conversation up to a "
                "turn does not give a prefix of the whole), so assistant tokens cannot be "
                "located; choose another template with --chat-template"
            )
        spans.append((len(before), len(through)))
    return text, spans


def encode(
    tokenizer: Any,
    messages: Messages,
    max_length: int,
    assistant_only: bool = True,
    template: ChosenTemplate | None = None,
) -> dict[str, Any]:
    """Token ids of the conversation and a 0/1 mask of assistant tokens, truncated.

    Returns ``{"input_ids", "assistant_masks", "truncated", "full_length"}``. ``template``:
    the installed template, named in errors.
    """
    text, spans = assistant_spans(tokenizer, messages, template)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    mask = []
    for start, end in enc["offset_mapping"]:
        inside = any(s <= start < e or (start == end and s < end == e) for s, e in spans)
        mask.append(1 if (inside or not assistant_only) else 0)
    full = len(ids)
    return {
        "input_ids": ids[:max_length],
        "assistant_masks": mask[:max_length],
        "truncated": full > max_length,
        "full_length": full,
    }
