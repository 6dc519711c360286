"""Judge configuration from task metadata (``--metadata``) and the environment.

Task metadata wins over the environment. The API key is only ever read from an
environment variable (``LANGADAPT_JUDGE_API_KEY``, else ``OPENAI_API_KEY``, or
the variable named by ``judge_api_key_env``), never from metadata, because
lm-eval writes task metadata into its results file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from langadapt_tasks.paths import home

DEFAULT_MODEL = "gpt-4.1"
RUBRICS = ("paper", "fastchat")
OFF_VALUES = ("off", "0", "false", "no", "none")


class JudgeConfigError(ValueError):
    """The judge is not configured, or a setting has an invalid value."""


@dataclass(frozen=True)
class JudgeSettings:
    enabled: bool = True
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    rubric: str = "paper"
    temperature: float = 0.0
    max_tokens: int = 1024
    concurrency: int = 16
    timeout: float = 120.0
    max_retries: int = 6
    backoff: float = 1.0  # seconds; the first retry waits about this long
    max_backoff: float = 60.0
    reasks: int = 2
    cache: Path | None = None
    output_dir: Path | None = None
    api_key_env: str | None = None
    # Not shown in repr, so a printed settings object cannot leak it.
    api_key: str | None = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """Settings that may be logged (no key)."""
        return {
            "model": self.model,
            "base_url": self.base_url or "https://api.openai.com/v1",
            "rubric": self.rubric,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "concurrency": self.concurrency,
        }

    def cache_path(self) -> Path:
        return self.cache or home() / "judge_cache.sqlite"


# setting name -> (environment variable, metadata key, type)
_SOURCES: dict[str, tuple[str, str, type]] = {
    "model": ("LANGADAPT_JUDGE_MODEL", "judge_model", str),
    "base_url": ("LANGADAPT_JUDGE_BASE_URL", "judge_base_url", str),
    "rubric": ("LANGADAPT_JUDGE_RUBRIC", "judge_rubric", str),
    "temperature": ("LANGADAPT_JUDGE_TEMPERATURE", "judge_temperature", float),
    "max_tokens": ("LANGADAPT_JUDGE_MAX_TOKENS", "judge_max_tokens", int),
    "concurrency": ("LANGADAPT_JUDGE_CONCURRENCY", "judge_concurrency", int),
    "timeout": ("LANGADAPT_JUDGE_TIMEOUT", "judge_timeout", float),
    "max_retries": ("LANGADAPT_JUDGE_MAX_RETRIES", "judge_max_retries", int),
    "backoff": ("LANGADAPT_JUDGE_BACKOFF", "judge_backoff", float),
    "reasks": ("LANGADAPT_JUDGE_REASKS", "judge_reasks", int),
    "cache": ("LANGADAPT_JUDGE_CACHE", "judge_cache", Path),
    "output_dir": ("LANGADAPT_JUDGE_OUTPUT", "judge_output", Path),
    "api_key_env": ("LANGADAPT_JUDGE_API_KEY_ENV", "judge_api_key_env", str),
}
ENV_SWITCH, META_SWITCH = "LANGADAPT_JUDGE", "judge"
KEY_VARS = ("LANGADAPT_JUDGE_API_KEY", "OPENAI_API_KEY")
BASE_URL_VARS = ("LANGADAPT_JUDGE_BASE_URL", "OPENAI_BASE_URL")


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
        try:
            values[name] = kind(raw)
        except (TypeError, ValueError) as err:
            raise JudgeConfigError(f"{source}={raw!r}: not a valid {kind.__name__}") from err
    settings = replace(JudgeSettings(), **values)
    if settings.rubric not in RUBRICS:
        raise JudgeConfigError(f"judge rubric {settings.rubric!r}: choose one of {RUBRICS}")
    if settings.concurrency < 1 or settings.reasks < 0 or settings.max_retries < 0:
        raise JudgeConfigError("judge concurrency must be >= 1, reasks and max_retries >= 0")
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


def setting_names() -> list[str]:
    return [f.name for f in fields(JudgeSettings)]
