"""Hostile inputs shared by the config tests: a YAML alias bomb, and a bounded CLI run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GiB = 1024**3

# Run in the child: import what the command needs (``preload``), then cap the address space
# at what that took plus ``headroom``, then run the command as ``python -m`` would.
_BOUNDED = """\
import resource, runpy, sys
{preload}
try:
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
except (OSError, StopIteration):
    size = None  # no /proc: the timeout alone bounds the run
if size is not None:
    resource.setrlimit(resource.RLIMIT_AS, (size + {headroom}, size + {headroom}))
sys.argv = {argv!r}
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""


def billion_laughs(indent: int = 0, depth: int = 9, width: int = 9) -> str:
    """The items of a YAML list that is the classic "billion laughs": ``width`` aliases of
    the level below on each of ``depth`` levels, ``width ** depth`` strings once expanded
    (9 ** 9: 387 million) from a file of a few hundred bytes."""
    items = ['&l0 "lol"']
    items += [f"&l{d} [{', '.join([f'*l{d - 1}'] * width)}]" for d in range(1, depth + 1)]
    return "".join(f"{' ' * indent}- {item}\n" for item in items)


def run_module(
    module: str,
    args: list[str],
    timeout: float = 60,
    preload: str = "",
    headroom: int = 2 * GiB,
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` from the source tree, bounded in time and in memory (the
    address space after ``preload`` ran, plus ``headroom``): code that expands its input
    fails this way instead of hanging the suite or taking the machine's memory."""
    code = _BOUNDED.format(preload=preload, headroom=headroom, argv=[module, *args], module=module)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(f"$ python -m {module} {' '.join(args)}\n--- stdout\n{proc.stdout[-3000:]}")
    print(f"--- stderr\n{proc.stderr[-3000:]}")
    return proc
