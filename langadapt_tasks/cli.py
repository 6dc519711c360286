"""``langadapt``: the command line of the lm-eval side of langadapt.

Each command imports its module only when it runs, so ``langadapt path`` and
``--help`` stay fast (no lm_eval, torch or openai).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from langadapt_tasks import __version__
from langadapt_tasks.languages.rubric_registry import DEFAULT_RUBRIC, RUBRIC_NAMES


def _cmd_path(args: argparse.Namespace) -> int:
    from langadapt_tasks.paths import task_dir

    print(task_dir())
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from langadapt_tasks.study.models import materialize

    print(materialize(args.model, args.dir))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from langadapt_tasks.generate import write_all
    from langadapt_tasks.paths import SOURCE_TASK_DIR

    if args.out is None and not SOURCE_TASK_DIR.is_dir():
        raise FileNotFoundError(
            "generate-yamls writes a source checkout's task_yamls/; run it from one, "
            "or pass --out DIR"
        )
    root = args.out or SOURCE_TASK_DIR
    written = write_all(root)
    print(f"wrote {len(written)} YAML files under {root}")
    return 0


def _cmd_scores(args: argparse.Namespace) -> int:
    from langadapt_tasks.benchmarks.scoring import BENCHMARKS, format_views, load_results

    results = load_results(args.results)
    views = format_views(results, bench=BENCHMARKS[args.bench])
    print(json.dumps(views, indent=2, ensure_ascii=False) if args.json else views["markdown"])
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    """Exit 0: every answer scored; 1: answers left unscored (unless --allow-unscored);
    2: a configuration, input, authentication or other client error."""
    from langadapt_tasks.judge.engine import JudgeStopped
    from langadapt_tasks.judge.rejudge import print_report, rejudge, unscored_note
    from langadapt_tasks.judge.settings import resolve

    settings = resolve({k: v for k, v in vars(args).items() if k.startswith("judge_")})
    try:
        report = rejudge(
            args.samples,
            settings,
            progress=not args.json,
            languages=args.languages,
            against=args.against,
        )
    except JudgeStopped as err:
        print(f"langadapt judge: error: {err}", file=sys.stderr)
        return 2
    print_report(report, args.json)
    if note := unscored_note(report):
        print(f"langadapt judge: {note}", file=sys.stderr)
        return 0 if args.allow_unscored else 1
    return 0


def _cmd_judge_agreement(args: argparse.Namespace) -> int:
    """Exit codes as ``langadapt judge``'s."""
    import os

    from langadapt_tasks.judge.agreement import print_report, run_agreement
    from langadapt_tasks.judge.engine import JudgeStopped
    from langadapt_tasks.judge.settings import resolve, setting_sources

    options = {k: v for k, v in vars(args).items() if k.startswith("judge_")}
    rubric_var = setting_sources()["rubric"][0]
    if not options.get("judge_rubric") and not os.environ.get(rubric_var):
        options["judge_rubric"] = "fastchat-pair"  # FastChat's own pairwise judge
    try:
        report = run_agreement(
            resolve(options),
            data=args.data,
            limit=args.limit,
            seed=args.seed,
            out=args.out,
            progress=not args.json,
        )
    except JudgeStopped as err:
        print(f"langadapt judge-agreement: error: {err}", file=sys.stderr)
        return 2
    print_report(report, args.json)
    if report["unscored"]:
        print(
            f"langadapt judge-agreement: {report['unscored']} of {report['pairs_judged']} pairs "
            "are unscored and not counted; run it again to judge only those",
            file=sys.stderr,
        )
        return 0 if args.allow_unscored else 1
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from langadapt_tasks.report import build_report

    report = build_report(args.inputs, args.out, names=args.name, baseline=args.baseline)
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"models: {', '.join(report['models'])} (baseline {report['baseline']})")
    print("\n".join(report["files"]))
    return 0


def _cmd_new_language(args: argparse.Namespace) -> int:
    from langadapt_tasks.generate.scaffold import scaffold

    folder = args.dir or Path("languages") / args.code
    for path in scaffold(args.code, args.name, folder, args.native_name or "", args.force):
        print(path)
    print(f"next: fill in the TODOs, then `langadapt language-yamls {folder}/language.yaml`")
    return 0


def _cmd_language_yamls(args: argparse.Namespace) -> int:
    from langadapt_tasks.benchmarks.mtbench import group_name
    from langadapt_tasks.generate.mtbench import write_language
    from langadapt_tasks.languages.spec import parse_spec

    out = args.out or args.spec.parent / "tasks"
    written = write_language(args.spec, out)
    for path in written:
        print(path)
    spec = parse_spec(args.spec)  # the language's tasks: MT-Bench turns 1 and 2, multiple choice
    tasks = [group_name(spec.code, 1), group_name(spec.code, 2), *filter(None, [spec.mc_task])]
    print(
        f"wrote {len(written)} files under {out}; run lm_eval --include_path {out} "
        f"--tasks {','.join(tasks)}"
    )
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from langadapt_tasks.study.config import load
    from langadapt_tasks.study.plan import format_plan
    from langadapt_tasks.study.run import JudgeIncomplete, StudyError, plan_study, run_study

    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    code, problem = 0, None
    cfg = load(args.config)
    if args.plan:  # nothing is run or written
        print(format_plan(cfg, plan_study(cfg)))
        return 0
    try:
        report = run_study(cfg, steps)
    except JudgeIncomplete as err:  # the report is written; rerunning judges what is left
        report, code, problem = err.report, 1, err
    except StudyError as err:
        print(f"langadapt study: error: {err}", file=sys.stderr)
        return 2
    if report:  # the tables, as lm_eval prints its own at the end of a run
        print("\n" + report["markdown"])
    for note in (report or {}).get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    if problem is not None:
        print(f"langadapt study: {problem}", file=sys.stderr)
    return code


def _judge_options(p: argparse.ArgumentParser, default_rubric: str | None = None) -> None:
    """The judge's settings, as ``langadapt judge`` and ``judge-agreement`` take them."""
    rubric = default_rubric or DEFAULT_RUBRIC.name
    p.add_argument("--judge-model", dest="judge_model", help="judge model (LANGADAPT_JUDGE_MODEL)")
    p.add_argument(
        "--base-url",
        dest="judge_base_url",
        help="OpenAI-compatible endpoint (OPENAI_BASE_URL); the key comes from "
        "OPENAI_API_KEY or LANGADAPT_JUDGE_API_KEY only",
    )
    p.add_argument(
        "--rubric",
        dest="judge_rubric",
        help=f"{', '.join(RUBRIC_NAMES)} (LANGADAPT_JUDGE_RUBRIC; default {rubric})",
    )
    p.add_argument(
        "--temperature", dest="judge_temperature", type=float, help="default: the rubric's"
    )
    p.add_argument("--max-tokens", dest="judge_max_tokens", type=int, help="default: the rubric's")
    p.add_argument("--concurrency", dest="judge_concurrency", type=int)
    p.add_argument(
        "--cache",
        dest="judge_cache",
        type=Path,
        help="verdict cache: a SQLite file, or a folder to keep judge_cache.sqlite in",
    )
    p.add_argument(
        "--allow-unscored",
        action="store_true",
        help="exit 0 even when answers stay unscored (default: exit 1)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")


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

    # One scoring command per benchmark: (command, lm-eval group, what its views are).
    for command, group, views in (
        (
            "cmmlu-scores",
            "cmmlu_langadapt",
            "CMMLU in both views (lm-eval groups, CMMLU leaderboard)",
        ),
        (
            "turkishmmlu-scores",
            "turkishmmlu_langadapt",
            "TurkishMMLU in both views (lm-eval groups, the paper's subject means)",
        ),
    ):
        help_text = f"{views} from an lm-eval results file or output directory"
        p = sub.add_parser(command, help=help_text)
        p.add_argument("results", type=Path, help="results_*.json, or a --output_path directory")
        p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
        p.set_defaults(func=_cmd_scores, bench=group)

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
    p.add_argument(
        "--languages",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        help="judge only these languages' answers, e.g. zh,tr (default: every language "
        "found); answers in several languages with different rubrics are judged one "
        "call per rubric",
    )
    p.add_argument(
        "--against",
        type=Path,
        nargs="+",
        default=[],
        metavar="BASELINE",
        help="a pairwise rubric (fastchat-pair): the baseline model's samples (files or "
        "folders); each model's answers are compared with its answers to the same question "
        "and turn, in both orders",
    )
    _judge_options(p)
    p.add_argument(
        "--output-dir",
        dest="judge_output",
        type=Path,
        help="where to write the verdict JSONL (default: next to each model's samples; "
        "with several models, a folder per model under it)",
    )
    p.set_defaults(func=_cmd_judge)

    p = sub.add_parser(
        "judge-agreement",
        help="how far a judge agrees with MT-Bench's human experts (mt_bench_human_judgments), "
        "beside the published GPT-4 figures",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="a local copy of lmsys/mt_bench_human_judgments (its folder, or "
        "data/human-*.parquet, or FastChat's human_judgments.json); default: the Hub",
    )
    p.add_argument("--limit", type=int, help="judge a sample of N expert votes (default: all)")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    p.add_argument("--out", type=Path, help="write the judge's votes and the table here (JSONL)")
    _judge_options(p, default_rubric="fastchat-pair")
    p.set_defaults(func=_cmd_judge_agreement)

    p = sub.add_parser(
        "report",
        help="CMMLU and MT-Bench tables, deltas and charts (Markdown, HTML, CSV, PNG) "
        "from lm-eval output directories or results files",
    )
    p.add_argument("inputs", type=Path, nargs="+", help="--output_path dirs or results_*.json")
    p.add_argument("--out", type=Path, default=Path("report"), help="folder to write (report/)")
    p.add_argument(
        "--name",
        action="append",
        help="LABEL once per input, in order; or FROM=LABEL to rename a model "
        "named FROM from its model args",
    )
    p.add_argument("--baseline", help="model the delta tables compare with (default: first)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "new-language", help="scaffold a language spec, judge templates and questions (TODOs)"
    )
    p.add_argument("code", help="language code, e.g. de (also the py3langid code if it has one)")
    p.add_argument("--name", required=True, help="English name, e.g. German")
    p.add_argument("--native-name", dest="native_name", help="name in the language, e.g. Deutsch")
    p.add_argument("--dir", type=Path, default=None, help="folder to write (languages/<code>)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=_cmd_new_language)

    p = sub.add_parser(
        "language-yamls",
        help="generate the task YAMLs of a language spec (MT-Bench, its own multiple choice)",
    )
    p.add_argument("spec", type=Path, help="the language.yaml")
    p.add_argument("--out", type=Path, default=None, help="folder to write (<spec folder>/tasks)")
    p.set_defaults(func=_cmd_language_yamls)

    p = sub.add_parser(
        "study",
        help="the whole study: train adapters, evaluate, judge, report (skips finished steps)",
    )
    p.add_argument("--config", type=Path, required=True, help="study YAML (docs/study.md)")
    p.add_argument(
        "--steps", default="train,evaluate,judge,report", help="comma-separated steps to run"
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print every step's command, done or to do, and the totals; run nothing",
    )
    p.set_defaults(func=_cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        print(f"langadapt {args.command}: error: {err}", file=sys.stderr)
        return 2
