"""Judge configuration from task metadata (``--metadata``) and the environment.

Task metadata wins over the environment. The API key is only ever read from an
environment variable (``LANGADAPT_JUDGE_API_KEY``, else ``OPENAI_API_KEY``, or
the variable named by ``judge_api_key_env``), never from metadata, because
lm-eval writes task metadata into its results file. ``temperature`` and
``max_tokens`` default to the rubric's own (FastChat: 0 and 2048). The rubric's name is
resolved to its record (``rubrics.Rubric``) once, when the settings are made: an unknown
name is refused there, with the one message that lists the rubrics. A base URL
that carries credentials (``http://user:password@host/v1``) is refused: the base
URL is printed and written into every verdict file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from langadapt_tasks.judge import rubrics
from langadapt_tasks.paths import home

DEFAULT_MODEL = "gpt-4.1"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
CACHE_FILE = "judge_cache.sqlite"  # the cache's name in $LANGADAPT_HOME or a --cache folder
# Where a rubric name is given, for the message that refuses an unknown one.
RUBRIC_SETTING = "judge rubric (judge_rubric, LANGADAPT_JUDGE_RUBRIC, --rubric)"
OFF_VALUES = ("off", "0", "false", "no", "none")


class JudgeConfigError(ValueError):
    """The judge is not configured, or a setting has an invalid value."""


def _authority(url: str) -> tuple[int, int]:
    """Where the authority of ``url`` is: after ``scheme://``, up to the path, query or
    fragment (the user name and password, if any, are in it, before an ``@``)."""
    start = url.index("://") + 3 if "://" in url else 0
    stop = re.search(r"[/?#]", url[start:])
    return start, start + stop.start() if stop else len(url)


def url_has_credentials(url: str) -> bool:
    """Whether ``url`` carries a user name or password (``scheme://user:pass@host``)."""
    start, end = _authority(url)
    return "@" in url[start:end]


def credentials_error(where: str, url: str) -> JudgeConfigError:
    """The error for a base URL with credentials, naming ``where`` it came from and showing
    the URL without them (never the user name or password)."""
    start, end = _authority(url)
    bare = url[:start] + url[start:end].rsplit("@", 1)[-1] + url[end:]
    return JudgeConfigError(
        f"{where}: the judge base URL carries credentials (a user name or password before "
        "the host); the base URL is printed and written into every verdict file, so it is "
        f"refused. Give the URL without them ({bare}) and the key in OPENAI_API_KEY or "
        "LANGADAPT_JUDGE_API_KEY (sent as a bearer token, never written anywhere)."
    )


@dataclass(frozen=True)
class JudgeSettings:
    enabled: bool = True
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    rubric: str = rubrics.DEFAULT_RUBRIC.name  # the name; ``rubric_record`` is its record
    temperature: float | None = None  # None: the rubric's own
    max_tokens: int | None = None  # None: the rubric's own
    concurrency: int = 16
    timeout: float = 120.0  # seconds without a byte from the server (each read)
    deadline: float = 300.0  # seconds for one whole request, however slowly it trickles
    max_retries: int = 6
    backoff: float = 1.0  # seconds; the first retry waits about this long
    max_backoff: float = 60.0  # the longest wait between tries, Retry-After included
    reasks: int = 2
    cache: Path | None = None
    output_dir: Path | None = None
    api_key_env: str | None = None
    # Not shown in repr, so a printed settings object cannot leak it.
    api_key: str | None = field(default=None, repr=False, compare=False)
    # ``rubric`` resolved: what the judge asks about the rubric (set once, below).
    rubric_record: rubrics.Rubric = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.base_url and url_has_credentials(self.base_url):
            raise credentials_error("judge base_url", self.base_url)
        try:
            record = rubrics.rubric_named(self.rubric, RUBRIC_SETTING)
        except rubrics.UnknownRubricError as err:
            raise JudgeConfigError(str(err)) from None
        object.__setattr__(self, "rubric_record", record)

    def request_params(self) -> dict[str, Any]:
        """``temperature`` and ``max_tokens`` of each judge request."""
        params = self.rubric_record.request_defaults()
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return {"temperature": params["temperature"], "max_tokens": params["max_tokens"]}

    def endpoint(self) -> str:
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")

    def describe(self) -> dict[str, Any]:
        """Settings that may be logged (no key)."""
        return {
            "model": self.model,
            "base_url": self.endpoint(),
            "rubric": self.rubric,
            **self.request_params(),
            "concurrency": self.concurrency,
        }

    def cache_path(self) -> Path:
        """The SQLite file; a folder given as the cache holds it as ``judge_cache.sqlite``."""
        path = (self.cache or home() / CACHE_FILE).expanduser()
        return path / CACHE_FILE if path.is_dir() else path


# setting name -> (environment variable, metadata key, type)
_SOURCES: dict[str, tuple[str, str, type]] = {
    "model": ("LANGADAPT_JUDGE_MODEL", "judge_model", str),
    "base_url": ("LANGADAPT_JUDGE_BASE_URL", "judge_base_url", str),
    "rubric": ("LANGADAPT_JUDGE_RUBRIC", "judge_rubric", str),
    "temperature": ("LANGADAPT_JUDGE_TEMPERATURE", "judge_temperature", float),
    "max_tokens": ("LANGADAPT_JUDGE_MAX_TOKENS", "judge_max_tokens", int),
    "concurrency": ("LANGADAPT_JUDGE_CONCURRENCY", "judge_concurrency", int),
    "timeout": ("LANGADAPT_JUDGE_TIMEOUT", "judge_timeout", float),
    "deadline": ("LANGADAPT_JUDGE_DEADLINE", "judge_deadline", float),
    "max_retries": ("LANGADAPT_JUDGE_MAX_RETRIES", "judge_max_retries", int),
    "backoff": ("LANGADAPT_JUDGE_BACKOFF", "judge_backoff", float),
    "max_backoff": ("LANGADAPT_JUDGE_MAX_BACKOFF", "judge_max_backoff", float),
    "reasks": ("LANGADAPT_JUDGE_REASKS", "judge_reasks", int),
    "cache": ("LANGADAPT_JUDGE_CACHE", "judge_cache", Path),
    "output_dir": ("LANGADAPT_JUDGE_OUTPUT", "judge_output", Path),
    "api_key_env": ("LANGADAPT_JUDGE_API_KEY_ENV", "judge_api_key_env", str),
}


def setting_sources() -> dict[str, tuple[str, str, type]]:
    """Each user-settable judge setting: (environment variable, metadata key, type)."""
    return dict(_SOURCES)


ENV_SWITCH, META_SWITCH = "LANGADAPT_JUDGE", "judge"
KEY_VARS = ("LANGADAPT_JUDGE_API_KEY", "OPENAI_API_KEY")


def _pick(name: str, metadata: Mapping[str, Any], env: Mapping[str, str]) -> tuple[Any, str]:
    var, key, _ = _SOURCES[name]
    if metadata.get(key) not in (None, ""):
        return metadata[key], f"--metadata {key}"
    if env.get(var):
        return env[var], var
    if name == "base_url" and env.get("OPENAI_BASE_URL"):
        return env["OPENAI_BASE_URL"], "OPENAI_BASE_URL"
    return None, ""


def resolve(
    metadata: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> JudgeSettings:
    """Settings from ``metadata`` (lm-eval task metadata) and ``env`` (default ``os.environ``)."""
    metadata = metadata or {}
    env = os.environ if env is None else env
    switch = str(metadata.get(META_SWITCH) or env.get(ENV_SWITCH) or "on").strip().lower()
    values: dict[str, Any] = {"enabled": switch not in OFF_VALUES}
    for name, (_, _, kind) in _SOURCES.items():
        raw, source = _pick(name, metadata, env)
        if raw is None:
            continue
        if name == "base_url" and url_has_credentials(str(raw)):
            if not values["enabled"]:  # never used with the judge off: dropped, not kept
                continue
            if source.startswith("--metadata"):
                source = "judge_base_url (--metadata judge_base_url, or --base-url)"
            raise credentials_error(source, str(raw))
        try:
            values[name] = kind(raw)
        except (TypeError, ValueError) as err:
            raise JudgeConfigError(f"{source}={raw!r}: not a valid {kind.__name__}") from err
    settings = replace(JudgeSettings(), **values)  # the rubric's name is checked here
    if settings.concurrency < 1 or settings.reasks < 0 or settings.max_retries < 0:
        raise JudgeConfigError("judge concurrency must be >= 1, reasks and max_retries >= 0")
    for name in ("timeout", "deadline", "backoff", "max_backoff"):
        value = getattr(settings, name)
        if not 0 < value < float("inf"):
            raise JudgeConfigError(f"judge {name} must be a positive number of seconds: {value}")
    if settings.max_tokens is not None and settings.max_tokens < 1:
        raise JudgeConfigError(f"judge max_tokens must be >= 1: {settings.max_tokens}")
    key_vars = (settings.api_key_env,) if settings.api_key_env else KEY_VARS
    key = next((env[v] for v in key_vars if env.get(v)), None)
    return replace(settings, api_key=key)


def require_configured(settings: JudgeSettings) -> None:
    """Raise, naming the variables to set, unless a judge endpoint is configured or off."""
    if not settings.enabled or settings.api_key or settings.base_url:
        return
    key_vars = (settings.api_key_env,) if settings.api_key_env else KEY_VARS
    raise JudgeConfigError(
        "MT-Bench needs an LLM judge and none is configured. Set "
        f"{' or '.join(key_vars)} (OpenAI), or OPENAI_BASE_URL / LANGADAPT_JUDGE_BASE_URL "
        "for any OpenAI-compatible server (vLLM, llama.cpp, Ollama); choose the judge with "
        "LANGADAPT_JUDGE_MODEL (default "
        f"{DEFAULT_MODEL}). To record generations and judge-free metrics only, pass "
        '--metadata \'{"judge": "off"}\' or set LANGADAPT_JUDGE=off; judge later with '
        "`langadapt judge <samples.jsonl>`."
    )
