"""lm-eval hooks of ``heldout_langadapt`` (referenced by its task YAML).

One document per assistant message of a held-out file (``benchmarks.heldout``), its
context rendered with the chat template of the model's tokenizer (``tokenizer=`` or
``pretrained=`` of the model args, or metadata ``heldout_tokenizer``). lm-eval scores the
continuation with its ``loglikelihood`` request, through ``hf`` and ``langadapt-hf``
alike, and aggregates with its own ``bits_per_byte`` and ``weighted_perplexity``.

lm-eval pairs a context and a continuation by moving the context's trailing whitespace to
the continuation (``TemplateLM._encode_pair``): with ChatML, the newline after
``<|im_start|>assistant`` is scored with the message. The bytes are the message's own.
"""

from __future__ import annotations

import math
from typing import Any

import datasets

from langadapt_tasks.benchmarks.heldout import (
    METADATA_FILE,
    METADATA_TOKENIZER,
    HeldoutDataError,
    heldout_file,
    read_rows,
    scored_messages,
)
from langadapt_tasks.benchmarks.mcdata import quiet_custom_dataset_hint
from langadapt_tasks.benchmarks.tokenizers import tokenizer_for
from langadapt_tasks.languages.spec import register

quiet_custom_dataset_hint()


def load_heldout(
    heldout_language: str | None = None, heldout_spec: str | None = None, **metadata: Any
) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: the held-out file's assistant messages.
    ``heldout_language`` (``heldout_langadapt_<code>``): its spec's ``heldout_file`` is the
    default; ``heldout_spec``: a language of the user's own (``langadapt language-yamls``)."""
    if heldout_spec:
        register(heldout_spec)
    path = heldout_file(metadata, heldout_language)
    try:
        tokenizer = tokenizer_for(metadata, METADATA_TOKENIZER)
    except OSError as err:
        raise HeldoutDataError(f"heldout_langadapt: the model's tokenizer {err}") from err
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise HeldoutDataError(
            "heldout_langadapt renders each context with the model's chat template: give "
            f"pretrained=/tokenizer= a tokenizer that has one, or name one with lm_eval "
            f'--metadata \'{{"{METADATA_TOKENIZER}": "NAME_OR_DIR"}}\' ({METADATA_FILE}: {path})'
        )

    def render(messages: list[dict[str, str]]) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    docs = []
    for doc in scored_messages(read_rows(path), render):
        # The continuation's tokens as lm-eval's hf splits the pair: the context's trailing
        # whitespace (ChatML's newline after "assistant") moves to the continuation.
        context = doc["context"].rstrip()
        tokens = count(doc["context"] + doc["continuation"]) - count(context)
        docs.append({**doc, "tokens": tokens})
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["context"]


def doc_to_target(doc: dict[str, Any]) -> str:
    return doc["continuation"]


def process_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, Any]:
    (loglikelihood, _), *_ = results
    return {
        "bits_per_byte": (loglikelihood, doc["bytes"]),
        "byte_perplexity": (loglikelihood, doc["bytes"]),
        "token_nll": (-loglikelihood, doc["tokens"]),
    }


def token_nll(items: list[tuple[float, int]]) -> float:
    """The mean negative log-likelihood per token (nats) over every scored message."""
    nll, tokens = zip(*items, strict=True)
    return sum(nll) / sum(tokens) if sum(tokens) else math.nan
