"""Forward passes per question and wall time: cmmlu_langadapt vs lm-eval's own ``cmmlu``.

All run 5-shot on the same local CMMLU files and the same model instance:
``cmmlu_langadapt`` (CMMLU's own prompt and shot-dropping rule, counted with
the model's tokenizer), ``cmmlu_langadapt_lmeval`` (lm-eval's ``cmmlu`` format)
and lm-eval's own ``cmmlu`` tasks. Prints a table and the ratios.

    python bench/cmmlu_forward_passes.py --model "$(langadapt models smollm2)" \
        --cmmlu-dir ../shared/data/cmmlu --subjects arts,virology,chinese_history --limit 5
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

from langadapt_tasks.benchmarks.cmmlu_subjects import SUBJECTS


def lm_eval_cmmlu_yamls(root: Path, cmmlu_dir: Path, subjects: list[str]) -> list[str]:
    """lm-eval's own cmmlu subject tasks, re-pointed at local CSV files."""
    import lm_eval.tasks

    builtin = Path(lm_eval.tasks.__file__).parent / "cmmlu"
    names = []
    for subject in subjects:
        name = f"bench_lm_eval_cmmlu_{subject}"
        config = {
            "include": str(builtin / f"cmmlu_{subject}.yaml"),
            "task": name,
            "dataset_path": "csv",
            "dataset_name": None,
            "dataset_kwargs": {
                "data_files": {s: str(cmmlu_dir / s / f"{subject}.csv") for s in ("test", "dev")}
            },
        }
        (root / f"{name}.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
        names.append(name)
    return names


def run(lm, tasks: list[str], limit: int | None, include: Path, model: str) -> dict[str, float]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    calls: list[int] = []
    hook = lm.model.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    try:
        start = time.perf_counter()
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=tasks,
            num_fewshot=5,
            limit=limit,
            # A model object carries no model args: name the tokenizer for the shot rule.
            task_manager=TaskManager(
                include_path=str(include), metadata={"cmmlu_tokenizer": model}
            ),
        )
        seconds = time.perf_counter() - start
    finally:
        hook.remove()
    questions = sum(len(out["samples"][t]) for t in tasks)
    acc = sum(out["results"][t]["acc,none"] * len(out["samples"][t]) for t in tasks) / questions
    return {
        "questions": questions,
        "forward_calls": len(calls),
        "rows": sum(calls),
        "seconds": seconds,
        "acc": acc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory or Hub id")
    parser.add_argument("--cmmlu-dir", type=Path, required=True)
    parser.add_argument("--subjects", default="arts,virology,chinese_history,college_law")
    parser.add_argument("--limit", type=int, default=5, help="questions per subject")
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()

    import torch
    from lm_eval.models.huggingface import HFLM

    subjects = list(SUBJECTS) if args.subjects == "all" else args.subjects.split(",")
    os.environ["LANGADAPT_CMMLU_DIR"] = str(args.cmmlu_dir.resolve())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = HFLM(pretrained=args.model, batch_size=args.batch_size, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        theirs = lm_eval_cmmlu_yamls(Path(tmp), args.cmmlu_dir.resolve(), subjects)
        ours = [f"cmmlu_langadapt_{s}" for s in subjects]
        # Warm-up so neither side pays for first-call allocation.
        lmeval_format = [f"cmmlu_langadapt_lmeval_{s}" for s in subjects]
        run(lm, ours[:1], 1, Path(tmp), args.model)
        rows = {
            "lm-eval cmmlu": run(lm, theirs, args.limit, Path(tmp), args.model),
            "cmmlu_langadapt": run(lm, ours, args.limit, Path(tmp), args.model),
            "..._lmeval": run(lm, lmeval_format, args.limit, Path(tmp), args.model),
        }

    print(
        f"\nmodel={args.model} device={device} subjects={len(subjects)} limit={args.limit} "
        f"5-shot batch_size={args.batch_size}"
    )
    print(
        f"{'task':<18}{'questions':>10}{'fwd calls':>11}{'calls/q':>9}{'seconds':>10}"
        f"{'s/q':>8}{'acc':>8}"
    )
    for name, r in rows.items():
        print(
            f"{name:<18}{r['questions']:>10}{r['forward_calls']:>11}"
            f"{r['forward_calls'] / r['questions']:>9.2f}{r['seconds']:>10.1f}"
            f"{r['seconds'] / r['questions']:>8.2f}{r['acc']:>8.3f}"
        )
    base, ours_r = rows["lm-eval cmmlu"], rows["cmmlu_langadapt"]
    print(
        f"\nratio cmmlu_langadapt / lm-eval cmmlu: forward calls "
        f"{ours_r['forward_calls'] / base['forward_calls']:.2f}x, "
        f"wall time {ours_r['seconds'] / base['seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()
