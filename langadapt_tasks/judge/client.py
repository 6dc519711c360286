"""One judge call over the ``openai`` client, with our own retry policy.

The client's built-in retries are switched off (``max_retries=0``) so the
policy is one place and testable: exponential backoff with jitter on 429, 5xx,
timeouts, connection errors and malformed (non-chat-completion) bodies, waiting
at least what ``Retry-After`` (or ``retry-after-ms``) asks. Other errors (401,
400, 404...) are not retried.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import random
import time
from collections.abc import Callable

import openai

from langadapt_tasks.judge.settings import JudgeSettings

log = logging.getLogger(__name__)


class MalformedReply(ValueError):
    """The endpoint answered 200 with something that is not a chat completion."""


RETRYABLE = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
    # A body that is not a chat completion (a proxy's error page, a truncated reply).
    openai.APIResponseValidationError,
    json.JSONDecodeError,
    MalformedReply,
)


class JudgeCallError(RuntimeError):
    """The judge endpoint failed for good (after retries, or a non-retryable error)."""


@functools.cache
def _build_response_models() -> None:
    """Build the chat-completion response models once, before the judge threads start.

    openai's pydantic models are built on first use, and concurrent first uses can
    race (a call then fails with "BaseModel cannot be instantiated directly").
    """
    from openai.types.chat import ChatCompletion

    reply = {"role": "assistant", "content": "1"}
    sample = {
        "id": "warm-up",
        "object": "chat.completion",
        "created": 0,
        "model": "judge",
        "choices": [{"index": 0, "finish_reason": "stop", "message": reply}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    try:
        ChatCompletion.construct(**sample)
    except Exception:  # only a warm-up; the real call reports real problems
        log.debug("warming up the openai response models failed", exc_info=True)


def make_client(settings: JudgeSettings) -> openai.OpenAI:
    _build_response_models()
    return openai.OpenAI(
        api_key=settings.api_key or "not-needed",  # local servers often take any key
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=0,
    )


def retry_after(err: Exception) -> float | None:
    """Seconds the server asked us to wait, if it said so."""
    response = getattr(err, "response", None)
    if response is None:
        return None
    headers = response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:  # an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, settings: JudgeSettings, err: Exception) -> float:
    """Exponential backoff with jitter, never shorter than Retry-After."""
    base = min(settings.max_backoff, settings.backoff * 2**attempt)
    delay = base * (0.5 + random.random() / 2)
    asked = retry_after(err)
    return max(delay, asked) if asked is not None else delay


def complete(
    client: openai.OpenAI,
    settings: JudgeSettings,
    messages: list[dict[str, str]],
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The judge's reply text for ``messages``; raises JudgeCallError when it gives up."""
    for attempt in range(settings.max_retries + 1):
        try:
            response = client.chat.completions.create(
                model=settings.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
            )
            return _content(response)
        except RETRYABLE as err:
            if attempt == settings.max_retries:
                raise JudgeCallError(
                    f"{type(err).__name__} after {attempt + 1} attempts: {err}"
                ) from err
            delay = backoff_delay(attempt, settings, err)
            log.debug("judge call failed (%s); retrying in %.2fs", type(err).__name__, delay)
            sleep(delay)
        except openai.APIError as err:  # 400, 401, 403, 404...: retrying will not help
            raise JudgeCallError(f"{type(err).__name__}: {err}") from err
    raise AssertionError("unreachable")


def _content(response: object) -> str:
    try:
        return response.choices[0].message.content or ""  # type: ignore[attr-defined]
    except (AttributeError, IndexError, TypeError) as err:
        raise MalformedReply(f"not a chat completion: {str(response)[:200]}") from err
