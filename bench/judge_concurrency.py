"""Judging 80 MT-Bench answers with concurrency 16 vs 1 against a loopback judge.

The loopback server (tests/judge_server.py) answers every request after a
fixed latency. Prints the two wall times, the speed ratio (expected >= 10x)
and the number of requests a second, cached run makes (expected 0).

    python bench/judge_concurrency.py [--latency 0.25] [--answers 80]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from judge_server import JudgeServer, Reply

from langadapt_tasks.benchmarks.mtbench import CATEGORIES
from langadapt_tasks.judge.engine import judge_items
from langadapt_tasks.judge.rubrics import JudgeItem
from langadapt_tasks.judge.settings import resolve


def answers(n: int) -> list[JudgeItem]:
    return [
        JudgeItem(
            "zh", 1, 81 + i, CATEGORIES[i // 10 % 8], (f"问题 {i}", "追问"), (f"第 {i} 个回答。",)
        )
        for i in range(n)
    ]


def run(server: JudgeServer, cache: Path, concurrency: int, items: list[JudgeItem]) -> float:
    env = {
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "bench",
        "LANGADAPT_JUDGE_CACHE": str(cache),
    }
    settings = resolve({"judge_concurrency": concurrency}, env=env)
    start = time.perf_counter()
    verdicts = judge_items(items, settings, progress=False)
    elapsed = time.perf_counter() - start
    assert all(v.score == 4.0 for v in verdicts.values())
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per judge reply")
    parser.add_argument("--answers", type=int, default=80)
    args = parser.parse_args()
    server = JudgeServer().start()
    server.responder = lambda body, n: Reply("4", delay=args.latency)
    items = answers(args.answers)
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up: the openai client's first request imports and builds its models (~1 s).
        run(server, Path(tmp) / "warmup.sqlite", 1, answers(1))
        server.max_in_flight = 0
        serial = run(server, Path(tmp) / "c1.sqlite", 1, items)
        parallel = run(server, Path(tmp) / "c16.sqlite", 16, items)
        before = len(server.requests)
        cached = run(server, Path(tmp) / "c16.sqlite", 16, items)
        repeat = len(server.requests) - before
    server.stop()
    print(f"{args.answers} answers, judge latency {args.latency:.2f} s")
    print(f"concurrency  1: {serial:7.2f} s")
    print(f"concurrency 16: {parallel:7.2f} s   (max in flight: {server.max_in_flight})")
    print(f"speed-up: {serial / parallel:.1f}x")
    print(f"second run (cached): {cached:.3f} s, {repeat} requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
