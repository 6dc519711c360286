"""``langadapt``: the command line of the lm-eval side of langadapt."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from langadapt_tasks import __version__


def _cmd_path(args: argparse.Namespace) -> int:
    from langadapt_tasks.paths import task_dir

    print(task_dir())
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from langadapt_tasks.models import materialize

    print(materialize(args.model, args.dir))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from langadapt_tasks.paths import SOURCE_TASK_DIR
    from langadapt_tasks.yaml_gen import write_all

    if args.out is None and not SOURCE_TASK_DIR.is_dir():
        raise FileNotFoundError(
            "generate-yamls writes a source checkout's task_yamls/; run it from one, "
            "or pass --out DIR"
        )
    root = args.out or SOURCE_TASK_DIR
    written = write_all(root)
    print(f"wrote {len(written)} YAML files under {root}")
    return 0


def _cmd_cmmlu_scores(args: argparse.Namespace) -> int:
    from langadapt_tasks.scoring import format_views, load_results

    results = load_results(args.results)
    views = format_views(results)
    print(json.dumps(views, indent=2, ensure_ascii=False) if args.json else views["markdown"])
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    from langadapt_tasks.judge.rejudge import print_report, rejudge
    from langadapt_tasks.judge.settings import resolve

    settings = resolve({k: v for k, v in vars(args).items() if k.startswith("judge_")})
    print_report(rejudge(args.samples, settings, progress=not args.json), args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langadapt", description=__doc__)
    parser.add_argument("--version", action="version", version=f"langadapt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("path", help="print the directory to pass to lm_eval --include_path")
    p.set_defaults(func=_cmd_path)

    p = sub.add_parser("models", help="prepare an embedded model and print its directory")
    p.add_argument("model", choices=["smollm2"], help="the embedded model")
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to write it (default: $LANGADAPT_HOME/models/<name>)",
    )
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("generate-yamls", help="regenerate the task YAMLs from the subject tables")
    p.add_argument("--out", type=Path, default=None, help="task_yamls directory to write")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser(
        "cmmlu-scores",
        help="CMMLU in both views (lm-eval groups, CMMLU leaderboard) "
        "from an lm-eval results file or output directory",
    )
    p.add_argument("results", type=Path, help="results_*.json, or a --output_path directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.set_defaults(func=_cmd_cmmlu_scores)

    p = sub.add_parser(
        "judge",
        help="judge (or re-judge) saved MT-Bench --log_samples output "
        "and print the per-category table",
    )
    p.add_argument(
        "samples",
        type=Path,
        nargs="+",
        help="samples_mtbench_langadapt_*.jsonl files, or directories holding them",
    )
    p.add_argument("--judge-model", dest="judge_model", help="judge model (LANGADAPT_JUDGE_MODEL)")
    p.add_argument(
        "--base-url",
        dest="judge_base_url",
        help="OpenAI-compatible endpoint (OPENAI_BASE_URL); the key comes from "
        "OPENAI_API_KEY or LANGADAPT_JUDGE_API_KEY only",
    )
    p.add_argument("--rubric", dest="judge_rubric", choices=["paper", "fastchat"])
    p.add_argument("--concurrency", dest="judge_concurrency", type=int)
    p.add_argument("--cache", dest="judge_cache", type=Path, help="verdict cache (SQLite file)")
    p.add_argument(
        "--output-dir",
        dest="judge_output",
        type=Path,
        help="where to write the verdict JSONL (default: next to the samples)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.set_defaults(func=_cmd_judge)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"langadapt {args.command}: error: {err}", file=sys.stderr)
        return 2
