"""The model's tokenizer, as a task hook finds it in lm-eval's task metadata (the model
args ``simple_evaluate`` puts there: ``tokenizer=``, else ``pretrained=``)."""

from __future__ import annotations

import functools
from typing import Any


def tokenizer_name(metadata: dict[str, Any], own_key: str) -> str | None:
    """The tokenizer to load: the task's own metadata key first, then the model args'."""
    return next(
        (
            metadata[k]
            for k in (own_key, "tokenizer", "pretrained")
            if isinstance(metadata.get(k), str) and metadata[k]
        ),
        None,
    )


def tokenizer_for(metadata: dict[str, Any], own_key: str) -> Any:
    """The tokenizer of :func:`tokenizer_name` (None without one), loaded once per name;
    a tokenizer that cannot be loaded raises ``OSError`` naming it and the cause."""
    name = tokenizer_name(metadata, own_key)
    if name is None:
        return None
    revision = metadata.get("revision") if own_key not in metadata else None
    trust = metadata.get("trust_remote_code") is True
    return _load(name, revision if isinstance(revision, str) else None, trust)


@functools.cache
def _load(name: str, revision: str | None, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    try:
        return AutoTokenizer.from_pretrained(name, **kwargs)
    except Exception as err:  # missing, offline, not a tokenizer: all end the same way
        raise OSError(f"{name!r} could not be loaded ({type(err).__name__}: {err})") from err
