"""Run a console script (``lm_eval``, ``langadapt``, ``langadapt-train``) inside the test
process, as its own command line would, and return what a subprocess run would.

The one difference from a fresh process: lm-eval's task index holds langadapt's tasks (and
any ``--include_path``) instead of all of lm-eval's 14,000 task files, which take about
25 s to index at every start on a 2-core machine. Argument parsing, task building, the
evaluation, the saved files and the printed tables are lm-eval's own. The tests that need a
fresh interpreter (the ``.pth`` hook, installed-package discovery, several processes) start
the real console script with ``conftest.run_cli``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock


@contextlib.contextmanager
def environment(env: dict[str, str] | None) -> Iterator[None]:
    """``os.environ`` is ``env`` for the duration (unchanged when ``env`` is None)."""
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _logs_to(stream: io.StringIO) -> Iterator[None]:
    """lm-eval's and langadapt's log records go to ``stream`` (as to a process's stderr)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)-8s [%(name)s] %(message)s"))
    loggers = [logging.getLogger(n) for n in ("lm_eval", "langadapt_tasks", "langadapt_train")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers = [handler]
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            lg.handlers, lg.level, lg.propagate = handlers, level, propagate


@contextlib.contextmanager
def _langadapt_task_index() -> Iterator[None]:
    """lm-eval's CLI builds ``TaskManager(include_path=...)``; index langadapt's tasks and
    the given paths only."""
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    from langadapt_tasks.paths import task_dir

    if getattr(TaskManager, "langadapt_only", False):  # a command run by a command
        yield
        return

    class LangadaptTasks(TaskManager):
        langadapt_only = True

        def __init__(self, *args: Any, include_path: Any = None, **kwargs: Any) -> None:
            given = include_path if isinstance(include_path, list | tuple) else [include_path]
            paths = [str(task_dir()), *(str(p) for p in given if p)]
            kwargs["include_defaults"] = False
            super().__init__(*args, include_path=paths, **kwargs)

    saved = lm_eval.tasks.TaskManager
    lm_eval.tasks.TaskManager = LangadaptTasks
    try:
        yield
    finally:
        lm_eval.tasks.TaskManager = saved


def _lm_eval(argv: list[str]) -> int:
    from lm_eval._cli import HarnessCLI

    saved = sys.argv
    sys.argv = ["lm_eval", *argv]
    try:
        parser = HarnessCLI()
        parser.execute(parser.parse_args())
    finally:
        sys.argv = saved
    return 0


def _langadapt(argv: list[str]) -> int:
    from langadapt_tasks.cli import main

    return main(argv)


def _langadapt_train(argv: list[str]) -> int:
    from langadapt_train.cli import main

    return main(argv)


MAINS: dict[str, Callable[[list[str]], int]] = {
    "lm_eval": _lm_eval,
    "langadapt": _langadapt,
    "langadapt-train": _langadapt_train,
}
MODULES = {
    "lm_eval": "lm_eval",
    "langadapt_tasks": "langadapt",
    "langadapt_train": "langadapt-train",
}


def _command(args: list[str]) -> tuple[str, list[str]]:
    """(console script, its arguments) of ``[script, ...]`` or ``[python, -m, module, ...]``."""
    if len(args) > 2 and args[1] == "-m" and args[2] in MODULES:
        return MODULES[args[2]], list(args[3:])
    tool = Path(args[0]).name
    if tool not in MAINS:
        raise ValueError(f"{tool} cannot run in-process; known: {', '.join(MAINS)}")
    return tool, list(args[1:])


def run_here(
    args: list[str],
    env: dict[str, str] | None = None,
    echo: bool = True,
    cwd: Path | None = None,
    **_: Any,
) -> subprocess.CompletedProcess[str]:
    """Run the console script ``args[0]`` (a name or a path to it) in this process with
    ``env`` as its environment; stdout, stderr and the exit status as a subprocess gives
    them (an uncaught exception: its traceback on stderr and status 1). ``echo``: print
    the command and its output (shown when a test fails)."""
    tool, argv = _command(args)
    out, err = io.StringIO(), io.StringIO()
    with (
        environment(env),
        contextlib.chdir(cwd or Path.cwd()),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _logs_to(err),
        _langadapt_task_index(),
        # A study run here runs its commands here too.
        mock.patch("langadapt_tasks.study.run.run_command", study_runner),
    ):
        try:
            code = MAINS[tool](argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if isinstance(exit_.code, str):
                print(exit_.code, file=err)
        except Exception:  # a process would print it and exit 1
            traceback.print_exc(file=err)
            code = 1
    proc = subprocess.CompletedProcess(list(args), code or 0, out.getvalue(), err.getvalue())
    if echo:
        show(proc, "  (in-process)")
    return proc


def show(proc: subprocess.CompletedProcess[str], note: str = "") -> None:
    """Print a command and the end of its output (pytest shows it when a test fails)."""
    print(
        f"$ {' '.join(proc.args)}{note}\n--- stdout\n{proc.stdout[-6000:]}"
        f"\n--- stderr\n{proc.stderr[-6000:]}"
    )


def study_runner(args: list[str], env: dict[str, str]) -> int:
    """A ``langadapt study`` runner (``run_study(..., run=)``) that runs each command in this
    process and prints what it printed, as a process of its own would."""
    proc = run_here(args, env, echo=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode
