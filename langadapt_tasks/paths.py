"""Where the task YAMLs live and where langadapt keeps its own files."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent  # langadapt_tasks/: its data files and templates
SOURCE_TASK_DIR = PACKAGE_DIR.parent / "task_yamls"


def installed_task_dir() -> Path:
    """``lm_eval/tasks/langadapt``: where ``pip install`` puts the YAMLs.

    Found without importing lm_eval (which loads torch and datasets).
    """
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("lm_eval is not installed: pip install lm-eval")
    return Path(spec.origin).resolve().parent / "tasks" / "langadapt"


def task_dir() -> Path:
    """The directory to give ``lm_eval --include_path``.

    A source checkout (editable install) uses its ``task_yamls/``; a regular
    install uses the copy inside lm_eval, which lm_eval scans by itself.
    """
    if SOURCE_TASK_DIR.is_dir():
        return SOURCE_TASK_DIR
    installed = installed_task_dir()
    if installed.is_dir():
        return installed
    raise FileNotFoundError(
        f"langadapt's task YAMLs are neither in {SOURCE_TASK_DIR} nor in {installed}; "
        "reinstall langadapt (pip install --force-reinstall --no-deps langadapt)"
    )


def home() -> Path:
    """langadapt's cache root: ``$LANGADAPT_HOME`` or ``$XDG_CACHE_HOME/langadapt``."""
    if os.environ.get("LANGADAPT_HOME"):
        return Path(os.environ["LANGADAPT_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "langadapt"


def local_dir(
    metadata: dict[str, Any] | None, key: str, env: str, error: type[Exception]
) -> Path | None:
    """A local data directory from task metadata ``key`` or environment ``env``, if set.

    A value that is not a directory raises ``error`` naming where it came from.
    """
    from_metadata = (metadata or {}).get(key)
    value = from_metadata or os.environ.get(env)
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        source = f"--metadata {key}" if from_metadata else env
        raise error(f"{source}={value}: no such directory")
    return root


def download_once(url: str, folder: str, error: type[Exception], hint: str) -> Path:
    """``url`` saved once under ``$LANGADAPT_HOME/<folder>/`` (atomic rename); a failed
    download raises ``error`` with ``hint`` (where a local copy can be given instead)."""
    import hashlib
    import urllib.request

    name = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16] + "-" + url.rsplit("/", 1)[-1]
    target = home() / folder / name
    if target.is_file():
        return target
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
    except OSError as err:
        raise error(f"{url} could not be downloaded ({err}). {hint}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_bytes(body)
    partial.replace(target)
    return target


def offline(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (default: this process's) turns the Hugging Face Hub, and with it
    langadapt's own downloads, off."""
    env = os.environ if env is None else env
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    return any(env.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE") for v in flags)


@functools.cache
def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched now (a quick HEAD request), or None."""
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
    except OSError as err:
        return f"{type(err).__name__}: {err}"
    return None
