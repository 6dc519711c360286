"""Shared fixtures: the embedded SmolLM2 model, the local data sets, the lm_eval CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


def pytest_configure(config: pytest.Config) -> None:
    """Hugging Face caches of this test run go to a temporary folder, not ~/.cache (set
    before datasets is imported: it reads the variables once)."""
    if "HF_DATASETS_CACHE" not in os.environ:
        os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="langadapt-hf-datasets-")


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
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded models, converted once per test session; every test's home links here."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def langadapt_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, shared_models: Path
) -> Path:
    """A fresh ``LANGADAPT_HOME`` per test (caches, downloads, verdicts never leak between
    tests or into the user's ~/.cache); only the converted models are shared."""
    home = tmp_path_factory.mktemp("langadapt_home")
    (home / "models").symlink_to(shared_models, target_is_directory=True)
    monkeypatch.setenv("LANGADAPT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def smollm2_dir(shared_models: Path) -> Path:
    """SmolLM2-135M-Instruct as a transformers directory (converted once per session)."""
    from langadapt_tasks.study.models import EMBEDDED, materialize

    # The folder LANGADAPT_HOME/models/<name> links to, so `langadapt models` finds it too.
    return materialize("smollm2", shared_models / EMBEDDED["smollm2"].name)


@pytest.fixture
def cmmlu_env(cmmlu_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing langadapt at the local CMMLU copy (also set in os.environ)."""
    monkeypatch.setenv("LANGADAPT_CMMLU_DIR", str(cmmlu_dir))
    return dict(os.environ)


def task_manager(model_args: str = "", **metadata: object):
    """lm-eval's TaskManager over langadapt's tasks only, with the model args in the tasks'
    metadata as ``simple_evaluate`` puts them (indexing all of lm-eval's tasks is slow)."""
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import simple_parse_args_string

    from langadapt_tasks.paths import task_dir

    meta = {**simple_parse_args_string(model_args), **metadata}
    return TaskManager(include_path=str(task_dir()), include_defaults=False, metadata=meta)


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
