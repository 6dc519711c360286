"""``langadapt-hf``: lm-eval's ``hf`` backend that runs a shared prompt prefix once per group."""

from __future__ import annotations

import os
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from langadapt_tasks.backend.autoregister import MODEL_NAME
from langadapt_tasks.backend.prefix import (
    ForwardArgs,
    Target,
    Tokens,
    group_by_prefix,
    model_input,
    prefix_kv,
    score_suffixes,
)

Request = tuple[tuple[str, str] | None, list[int], list[int]]
# A fixed prompt whose next-token logits must move when an adapter is applied.
ADAPTER_PROBE = "Question: What is the capital of France?\nAnswer:"


def _flag(value: Any) -> bool:
    """A boolean model arg, as lm-eval passes it (a bool, or text from --model_args)."""
    return str(value).lower() not in ("false", "0", "no", "off")


@register_model(MODEL_NAME)
class SharedPrefixHFLM(HFLM):
    """``hf`` with loglikelihood requests grouped by their longest shared token prefix: the
    prefix (e.g. a subject's instruction and five solved examples) runs once, batch 1, and
    every request of the group is scored on its remaining tokens against the prefix's KV
    cache. Same model args as ``hf``, plus ``prefix_min_tokens`` and ``prefix_min_fraction``
    (a group's shared prefix must be at least that many tokens and that fraction of its
    shortest input; other requests are scored by ``hf`` itself), ``shared_prefix`` (False:
    every request scored by ``hf`` itself) and ``check_adapter`` (with ``peft=``, stop when
    the adapter does not change the outputs). Generation and rolling
    loglikelihood are ``hf``'s. Under ``accelerate launch`` the requests are shared over the
    processes on CPUs too."""

    def __init__(
        self,
        *args: Any,
        prefix_min_tokens: int = 32,
        prefix_min_fraction: float = 0.5,
        check_adapter: bool = True,
        shared_prefix: bool = True,
        **kwargs: Any,
    ) -> None:
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and not torch.cuda.is_available():
            # Several processes and no GPU: accelerate's process group on the CPU (gloo), as
            # `accelerate launch --cpu` would give with MPI (langadapt-train does the same).
            os.environ.setdefault("ACCELERATE_USE_CPU", "true")
        super().__init__(*args, **kwargs)
        if int(prefix_min_tokens) < 1 or not 0.0 <= float(prefix_min_fraction) <= 1.0:
            raise ValueError(
                f"{MODEL_NAME}: prefix_min_tokens must be >= 1 and prefix_min_fraction in "
                f"[0, 1] (got {prefix_min_tokens}, {prefix_min_fraction})"
            )
        self.prefix_min_tokens = int(prefix_min_tokens)
        self.prefix_min_fraction = float(prefix_min_fraction)
        self.shared_prefix = _flag(shared_prefix)
        self._share_requests_over_cpu_processes()
        if self.peft and _flag(check_adapter):
            self._check_adapter_applies()

    def _share_requests_over_cpu_processes(self) -> None:
        """Under ``accelerate launch`` with N processes, ``hf`` splits the requests over them
        only on GPUs; on CPUs every process would evaluate everything and write the same
        files. Here each process takes its share, as on GPUs (lm-eval's data parallel)."""
        accelerator = getattr(self, "accelerator", None)
        if accelerator is not None and self._world_size == 1 and accelerator.num_processes > 1:
            self._rank = accelerator.process_index
            self._world_size = accelerator.num_processes

    def _check_adapter_applies(self) -> None:
        """Stop when the adapter leaves the model's next-token log-probabilities on a fixed
        prompt exactly as the base model's: its scores would be the base model's (an adapter
        whose target modules match nothing, or one never trained)."""
        ids = torch.tensor([self.tok_encode(ADAPTER_PROBE)], device=self.device)
        with_adapter = self._forward(input_ids=ids).logits[0, -1].float()
        with self.model.disable_adapter():
            without = self._forward(input_ids=ids).logits[0, -1].float()
        if torch.equal(with_adapter, without):
            raise ValueError(
                f"{MODEL_NAME}: the adapter {self.peft} does not change the model's outputs "
                f"(next-token logits on {ADAPTER_PROBE!r} equal the base model's), so its "
                "scores would be the base model's. Check that it was trained and that its "
                "target_modules name layers of this model; check_adapter=False skips this check"
            )

    def _forward(self, **kwargs: Any) -> Any:
        """The model's forward pass under ``hf``'s no-grad and mixed-precision settings."""
        autocast = torch.autocast(
            device_type=self.device.type,
            dtype=self.mixed_precision_dtype,
            enabled=self.mixed_precision_dtype is not None,
        )
        with torch.no_grad(), autocast:
            return self.model(**kwargs)

    def _reuse_possible(self) -> bool:
        """Causal models only; prompt-learning PEFT adapters (virtual tokens) go to ``hf``."""
        if self.backend != "causal" or not self.shared_prefix:
            return False
        peft_config = getattr(self.model, "active_peft_config", None)
        return not getattr(peft_config, "is_prompt_learning", False)

    def _loglikelihood_tokens(
        self,
        requests: list[Request],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        if not requests or not self._reuse_possible():
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)

        # hf's model input per request, and the requests (index, first scored position,
        # continuation) of each distinct input: a shared input runs once, as in hf's cache.
        by_input: dict[Tokens, list[tuple[int, Target]]] = {}
        for index, (_, context, continuation) in enumerate(requests):
            assert len(context) > 0 and 0 < len(continuation) <= self.max_length
            tokens = model_input(context, continuation, self.max_length)
            start = len(tokens) - len(continuation)
            by_input.setdefault(tokens, []).append((index, (start, continuation)))
        starts = {tokens: min(t[0] for _, t in reqs) for tokens, reqs in by_input.items()}
        groups, alone = group_by_prefix(starts, self.prefix_min_tokens, self.prefix_min_fraction)

        batch_size = self._reuse_batch_size(requests, override_bs)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        pending = [index for tokens in alone for index, _ in by_input[tokens]]
        pbar = tqdm(
            total=len(requests) - len(pending),
            disable=disable_tqdm or self.rank != 0,
            desc="Running loglikelihood requests (shared prefix)",
        )
        forward_args = ForwardArgs.of(self.model)
        for group in groups:
            kv = prefix_kv(
                self._forward, forward_args, group.inputs[0][: group.prefix_len], self.device
            )
            if kv is None:  # not a plain KV cache: hf scores the group
                pending += [index for tokens in group.inputs for index, _ in by_input[tokens]]
                continue
            # Longest suffix first, as hf orders its batches.
            members = sorted(group.inputs, key=len, reverse=True)
            for at in range(0, len(members), batch_size):
                batch = members[at : at + batch_size]
                scored = score_suffixes(
                    self._forward,
                    forward_args,
                    kv,
                    group.prefix_len,
                    [tokens[group.prefix_len :] for tokens in batch],
                    [[target for _, target in by_input[tokens]] for tokens in batch],
                    self.device,
                    self.softmax_dtype,
                )
                for tokens, answers in zip(batch, scored, strict=True):
                    for (index, _), answer in zip(by_input[tokens], answers, strict=True):
                        results[index] = answer
                        request_str = requests[index][0]
                        if request_str is not None:
                            self.cache_hook.add_partial("loglikelihood", request_str, answer)
                        pbar.update(1)
            del kv
        pbar.close()

        if pending:
            pending.sort()
            answers = super()._loglikelihood_tokens(
                [requests[i] for i in pending], disable_tqdm, batch_size
            )
            for index, answer in zip(pending, answers, strict=True):
                results[index] = answer
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _reuse_batch_size(self, requests: list[Request], override_bs: int | None) -> int:
        """The batch size of the suffix passes: the fixed one, or with ``auto`` hf's detection
        on the longest request (an upper bound: a suffix pass holds no more than a full one).
        0 is hf's "no limit": one batch of all requests."""
        if self.batch_size != "auto":
            return int(self.batch_size) or len(requests)
        if override_bs:
            return int(override_bs)
        longest = max(requests, key=lambda r: len(r[1]) + len(r[2]))
        print("Passed argument batch_size = auto. Detecting largest batch size")
        size = self._detect_batch_size([longest], 0)
        print(f"Determined largest batch size: {size}")
        return size
