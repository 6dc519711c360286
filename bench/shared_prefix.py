"""Wall time and tokens through the model: lm-eval's ``hf`` vs ``langadapt-hf`` on CMMLU 5-shot.

Both backends score the same questions (``cmmlu_langadapt_<subject>``, 5-shot) with the
same model and settings; ``langadapt-hf`` runs each subject's shared prefix (instruction +
five solved examples) once. Prints, per backend, the wall time of ``simple_evaluate`` and of
its loglikelihood phase, the forward calls and the tokens through the model (input ids,
padding included: a proxy for forward FLOPs), the ratios to ``hf`` and the largest
per-request log-likelihood difference from ``hf``.

    python bench/shared_prefix.py --cmmlu-dir ../shared/data/cmmlu \
        --subjects philosophy,logical --limit 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from langadapt_tasks.paths import task_dir

DEFAULT_SUBJECTS = "philosophy,college_engineering_hydrology,logical"


class Meter:
    """Forward calls and input tokens of a model, and seconds spent in loglikelihood."""

    def __init__(self, lm: Any) -> None:
        self.calls = self.tokens = 0
        self.loglikelihood_s = 0.0
        self.handle = lm.model.register_forward_pre_hook(self._count, with_kwargs=True)
        inner = lm.loglikelihood

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.loglikelihood_s += time.perf_counter() - start

        lm.loglikelihood = timed

    def _count(self, module: Any, args: tuple, kwargs: dict) -> None:
        ids = args[0] if args else kwargs["input_ids"]
        self.calls += 1
        self.tokens += ids.numel()

    def reset(self) -> None:
        self.calls = self.tokens = 0
        self.loglikelihood_s = 0.0


def evaluate(lm: Any, tasks: list[str], limit: int | None, metadata: dict) -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(task_dir()), include_defaults=False, metadata=metadata)
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=tasks, limit=limit, task_manager=manager, log_samples=True
    )
    return {"seconds": time.perf_counter() - start, "out": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory or Hub id (default: embedded SmolLM2)")
    parser.add_argument("--cmmlu-dir", type=Path, required=True, help="local CMMLU folder")
    parser.add_argument("--subjects", default=DEFAULT_SUBJECTS, help="comma-separated")
    parser.add_argument("--limit", type=int, default=None, help="questions per subject")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-size", default="1", help="hf's (1 by default, as lm-eval's)")
    parser.add_argument(
        "--prefix-batch-size",
        default="1,8",
        help="langadapt-hf's batch of suffixes; comma-separated: one run each",
    )
    args = parser.parse_args()

    import torch
    from lm_eval.models.huggingface import HFLM

    from langadapt_tasks.backend.hf import SharedPrefixHFLM

    if args.model is None:
        from langadapt_tasks.study.models import materialize

        args.model = str(materialize("smollm2"))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    subjects = args.subjects.split(",")
    tasks = [f"cmmlu_langadapt_{s}" for s in subjects]
    metadata = {"cmmlu_dir": str(args.cmmlu_dir.resolve()), "pretrained": args.model}
    common = {"pretrained": args.model, "device": device, "dtype": args.dtype}
    hf_lm = HFLM(batch_size=args.batch_size, **common)
    backends: dict[str, Any] = {f"hf bs={args.batch_size}": hf_lm}
    for size in args.prefix_batch_size.split(","):
        backends[f"langadapt-hf bs={size}"] = SharedPrefixHFLM(
            pretrained=hf_lm.model, tokenizer=hf_lm.tokenizer, batch_size=size
        )
    rows: dict[str, dict[str, Any]] = {}
    for name, lm in backends.items():
        meter = Meter(lm)
        evaluate(lm, tasks[:1], 1, metadata)  # warm-up: first-call allocation, dataset cache
        meter.reset()
        run = evaluate(lm, tasks, args.limit, metadata)
        meter.handle.remove()
        rows[name] = {**run, "calls": meter.calls, "tokens": meter.tokens}
        rows[name]["loglikelihood_s"] = meter.loglikelihood_s

    names = list(rows)
    base = rows[names[0]]
    questions = sum(len(base["out"]["samples"][t]) for t in tasks)
    print(
        f"\nmodel={args.model} device={device} dtype={args.dtype} subjects={len(subjects)} "
        f"limit={args.limit} questions={questions} 5-shot"
    )
    print(
        f"{'backend':<20}{'wall s':>8}{'loglik s':>10}{'calls':>7}{'tokens':>9}{'acc':>7}"
        f"{'wall x':>8}{'loglik x':>10}{'tokens x':>10}{'max |dll|':>11}{'acc diff':>9}"
    )
    for name, r in rows.items():
        acc = sum(r["out"]["results"][t]["acc,none"] * len(r["out"]["samples"][t]) for t in tasks)
        worst, flips = 0.0, 0
        for task in tasks:
            pairs = zip(base["out"]["samples"][task], r["out"]["samples"][task], strict=True)
            for a, b in pairs:
                flips += a["acc"] != b["acc"]
                for ra, rb in zip(a["resps"], b["resps"], strict=True):
                    worst = max(worst, abs(ra[0][0] - rb[0][0]))
        print(
            f"{name:<20}{r['seconds']:>8.1f}{r['loglikelihood_s']:>10.1f}{r['calls']:>7}"
            f"{r['tokens']:>9}{acc / questions:>7.3f}{r['seconds'] / base['seconds']:>8.2f}"
            f"{r['loglikelihood_s'] / base['loglikelihood_s']:>10.2f}"
            f"{r['tokens'] / base['tokens']:>10.2f}{worst:>11.1e}{flips:>9}"
        )


if __name__ == "__main__":
    main()
