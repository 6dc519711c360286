"""Shared-prefix grouping of loglikelihood inputs and their scoring against one prefix KV cache."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

Tokens = tuple[int, ...]
# A request to score on one input: (first scored position, continuation tokens).
Target = tuple[int, Sequence[int]]
# The model's forward pass: keyword arguments in, transformers' output (with .logits) out.
Forward = Callable[..., Any]
KV = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class ForwardArgs:
    """What the model's forward accepts: the name of its KV cache argument (``cache`` in
    newer transformers 5 releases, ``past_key_values`` before) and whether it can compute
    the logits of some positions only (``logits_to_keep``)."""

    cache: str
    logits_to_keep: bool

    @classmethod
    def of(cls, model: torch.nn.Module) -> ForwardArgs:
        """Read from the forward signature (of the base model under a PEFT wrapper)."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(base.forward).parameters
        cache = "cache" if "cache" in params else "past_key_values"
        return cls(cache=cache, logits_to_keep="logits_to_keep" in params)


def _output_cache(out: Any) -> Any:
    cache = out.get("cache") if hasattr(out, "get") else None
    return cache if cache is not None else getattr(out, "past_key_values", None)


def model_input(context: Sequence[int], continuation: Sequence[int], max_length: int) -> Tokens:
    """The ``hf`` backend's causal input: context + continuation, truncated to max_length + 1
    tokens from the left, last token dropped."""
    return tuple((list(context) + list(continuation))[-(max_length + 1) :][:-1])


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class PrefixGroup:
    """Distinct inputs that share their first ``prefix_len`` tokens (the prefix run once)."""

    prefix_len: int
    inputs: list[Tokens]


def group_by_prefix(
    starts: dict[Tokens, int], min_tokens: int, min_fraction: float
) -> tuple[list[PrefixGroup], list[Tokens]]:
    """Group distinct inputs (mapped to their first scored position) by shared prefix.

    The inputs are sorted; consecutive ones join a group while the group's common prefix,
    capped at every member's first scored position (the prefix yields no logits), stays at
    least ``min_tokens`` and ``min_fraction`` of the group's shortest input. Returns the groups
    of two or more inputs and the inputs left alone (to be scored as ``hf`` scores them)."""
    groups: list[PrefixGroup] = []
    alone: list[Tokens] = []

    def close(group: list[Tokens], prefix_len: int) -> None:
        if len(group) >= 2:
            groups.append(PrefixGroup(prefix_len, group))
        else:
            alone.extend(group)

    group: list[Tokens] = []
    prefix_len = shortest = 0
    for tokens in sorted(starts):
        if group:
            new_prefix = min(prefix_len, common_prefix(group[-1], tokens), starts[tokens])
            new_shortest = min(shortest, len(tokens))
            if new_prefix >= max(min_tokens, math.ceil(min_fraction * new_shortest)):
                group.append(tokens)
                prefix_len, shortest = new_prefix, new_shortest
                continue
            close(group, prefix_len)
        group, prefix_len, shortest = [tokens], starts[tokens], len(tokens)
    close(group, prefix_len)
    return groups, alone


def prefix_kv(
    forward: Forward, args: ForwardArgs, prefix: Sequence[int], device: torch.device | str
) -> KV | None:
    """Run the prefix once (batch 1) and return its per-layer keys and values, or None when
    the model's cache is not a plain full-attention ``DynamicCache`` (sliding windows,
    recurrent state): such models are scored without reuse."""
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    # Only the cache is used: skip the vocabulary projection where the model allows it.
    out = forward(
        input_ids=ids, use_cache=True, **({"logits_to_keep": 1} if args.logits_to_keep else {})
    )
    cache = _output_cache(out)
    layers = getattr(cache, "layers", None)
    if not isinstance(cache, DynamicCache) or not layers:
        return None
    if any(type(layer) is not DynamicLayer or not layer.is_initialized for layer in layers):
        return None
    if any(layer.keys.shape[-2] != len(prefix) for layer in layers):
        return None
    return [(layer.keys, layer.values) for layer in layers]


def score_suffixes(
    forward: Forward,
    args: ForwardArgs,
    kv: KV,
    prefix_len: int,
    suffixes: Sequence[Sequence[int]],
    targets: Sequence[Sequence[Target]],
    device: torch.device | str,
    softmax_dtype: torch.dtype | None = None,
) -> list[list[tuple[float, bool]]]:
    """Score one batch of inputs after a shared prefix.

    ``suffixes[i]`` are input i's tokens after the prefix (right padded here); ``targets[i]``
    its requests as (first scored position in the whole input, continuation tokens), the
    positions at or after ``prefix_len``. The batch attends to a fresh cache built from the
    prefix's keys and values (a forward pass extends its cache, so the prefix's own tensors
    are never handed to the model), with an attention mask over prefix + suffix and position
    ids that continue after the prefix; the vocabulary projection runs only at the scored
    positions where the model allows it. Returns (log-likelihood, is greedy) per target."""
    rows = len(suffixes)
    width = max(len(s) for s in suffixes)
    ids = torch.zeros((rows, width), dtype=torch.long, device=device)
    mask = torch.zeros((rows, prefix_len + width), dtype=torch.long, device=device)
    mask[:, :prefix_len] = 1
    for i, suffix in enumerate(suffixes):
        ids[i, : len(suffix)] = torch.tensor(list(suffix), dtype=torch.long, device=device)
        mask[i, prefix_len : prefix_len + len(suffix)] = 1
    positions = torch.arange(prefix_len, prefix_len + width, device=device).expand(rows, -1)
    cache = DynamicCache(
        ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in kv]
    )
    # Suffix positions whose logits are scored (the union over the batch's rows).
    scored = sorted(
        {
            p
            for i, row in enumerate(targets)
            for start, _ in row
            for p in range(start - prefix_len, len(suffixes[i]))
        }
    )
    assert scored[0] >= 0, "a scored position lies inside the shared prefix"
    extra: dict[str, Any] = {args.cache: cache}
    if args.logits_to_keep:
        extra["logits_to_keep"] = torch.tensor(scored, dtype=torch.long, device=device)
        column = {p: j for j, p in enumerate(scored)}
    else:
        column = {p: p for p in scored}
    logits = forward(
        input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **extra
    ).logits
    results: list[list[tuple[float, bool]]] = []
    for i, row_targets in enumerate(targets):
        answers = []
        for start, continuation in row_targets:
            cols = [column[p] for p in range(start - prefix_len, len(suffixes[i]))]
            log_probs = F.log_softmax(logits[i, cols], dim=-1, dtype=softmax_dtype)
            cont = torch.tensor(list(continuation), dtype=torch.long, device=log_probs.device)
            greedy = bool((log_probs.argmax(dim=-1) == cont).all())
            answers.append((float(log_probs.gather(1, cont.unsqueeze(-1)).sum()), greedy))
        results.append(answers)
    return results
