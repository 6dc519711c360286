"""Shared fixtures: the embedded SmolLM2 model, the local data sets, the lm_eval CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Public data sets, kept beside the checkout (see README, "Data sources").
DATA = Path(os.environ.get("LANGADAPT_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def _data(sub: str) -> Path:
    path = DATA / sub
    if not path.exists():
        pytest.fail(f"test data {path} not found; set LANGADAPT_TEST_DATA to the data directory")
    return path


@pytest.fixture(scope="session")
def cmmlu_dir() -> Path:
    return _data("cmmlu")


@pytest.fixture(scope="session")
def mt_bench_dir() -> Path:
    return _data("mt_bench")


@pytest.fixture(scope="session")
def sft_dir() -> Path:
    return _data("sft")


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a transformers directory (converted once, then cached)."""
    from langadapt_tasks.models import materialize

    return materialize("smollm2")


@pytest.fixture
def cmmlu_env(cmmlu_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing langadapt at the local CMMLU copy (also set in os.environ)."""
    monkeypatch.setenv("LANGADAPT_CMMLU_DIR", str(cmmlu_dir))
    return dict(os.environ)


def lm_eval_bin() -> str:
    """The real ``lm_eval`` console script of this interpreter's environment."""
    candidate = Path(sys.executable).parent / "lm_eval"
    return str(candidate) if candidate.exists() else "lm_eval"


def run_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: int = 900, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, returning its output; the output is shown when a test fails."""
    proc = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    print(
        f"$ {' '.join(args)}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    )
    return proc
