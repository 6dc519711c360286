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
from typing import Any

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


def render(tokenizer: Any, messages: Messages, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )


def assistant_spans(tokenizer: Any, messages: Messages) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], generation_prompt=True) if i else ""
        through = render(tokenizer, messages[: i + 1])
        if not (through.startswith(before) and text.startswith(through)):
            raise TemplateError(
                "the chat template is not prefix-preserving (rendering a conversation up to a "
                "turn does not give a prefix of the whole), so assistant tokens cannot be "
                "located; choose another template with --chat-template"
            )
        spans.append((len(before), len(through)))
    return text, spans


def encode(
    tokenizer: Any, messages: Messages, max_length: int, assistant_only: bool = True
) -> dict[str, Any]:
    """Token ids of the conversation and a 0/1 mask of assistant tokens, truncated.

    Returns ``{"input_ids", "assistant_masks", "truncated", "full_length"}``.
    """
    text, spans = assistant_spans(tokenizer, messages)
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
