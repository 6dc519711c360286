"""One judge call over the ``openai`` client, with our own retry policy.

The client's built-in retries are switched off (``max_retries=0``) so the
policy is one place and testable: exponential backoff with jitter on 408, 429,
5xx, timeouts, connection errors and malformed (non-chat-completion) bodies,
waiting what ``Retry-After`` (or ``retry-after-ms``) asks, but never longer than
``max_backoff``. Every request has a whole-request ``deadline`` on top of the
per-read ``timeout``, so a server that trickles its reply cannot hold it for
long. Client errors (400, 401, 403, 404...) are not retried: they raise
``JudgeClientError`` and the engine stops at the first one.
"""

from __future__ import annotations

import email.utils
import functools
import importlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai

from langadapt_tasks.judge.redaction import redact
from langadapt_tasks.judge.settings import JudgeSettings

log = logging.getLogger(__name__)


def _http_library() -> Any:
    """The HTTP library openai's client is built on (httpx; httpx2 in newer releases)."""
    base = next(c for c in openai.DefaultHttpxClient.__mro__ if c.__name__ == "Client")
    return importlib.import_module(base.__module__.split(".")[0])


http = _http_library()


class MalformedReply(ValueError):
    """The endpoint answered 200 with something that is not a chat completion."""


class DeadlineExceeded(http.ReadTimeout):  # type: ignore[misc,name-defined]
    """The whole request took longer than the judge's ``deadline``."""


class JudgeCallError(RuntimeError):
    """The judge endpoint failed for good (after retries, or a non-retryable error)."""

    def __init__(self, message: str, *, deadline_hit: bool = False) -> None:
        super().__init__(message)
        self.deadline_hit = deadline_hit


class JudgeClientError(JudgeCallError):
    """A client error (401, 400, 404...): the configuration is wrong, nothing will score."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


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
RETRYABLE_STATUS = frozenset({408, 409})  # request timeout, conflict: like a timeout


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


class _DeadlineStream(http.SyncByteStream):  # type: ignore[misc,name-defined]
    """A response body that raises ``DeadlineExceeded`` once the request's time is up."""

    def __init__(self, stream: Any, deadline: float, limit: float) -> None:
        self._stream, self._deadline, self._limit = stream, deadline, limit

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            if time.monotonic() > self._deadline:
                raise DeadlineExceeded(f"request deadline of {self._limit:g} s exceeded")
            yield chunk

    def close(self) -> None:
        self._stream.close()


def _deadline_hooks(limit: float) -> dict[str, list[Callable[..., None]]]:
    def on_request(request: Any) -> None:
        request.extensions["langadapt_deadline"] = time.monotonic() + limit
        # No single phase may outlast the whole request either.
        timeout = dict(request.extensions.get("timeout") or {})
        for phase in ("connect", "read", "write", "pool"):
            current = timeout.get(phase)
            timeout[phase] = limit if current is None else min(current, limit)
        request.extensions["timeout"] = timeout

    def on_response(response: Any) -> None:
        deadline = response.request.extensions.get("langadapt_deadline")
        if deadline is not None:
            response.stream = _DeadlineStream(response.stream, deadline, limit)

    return {"request": [on_request], "response": [on_response]}


def make_client(settings: JudgeSettings) -> openai.OpenAI:
    _build_response_models()
    http_client = openai.DefaultHttpxClient(
        timeout=settings.timeout, event_hooks=_deadline_hooks(settings.deadline)
    )
    return openai.OpenAI(
        api_key=settings.api_key or "not-needed",  # local servers often take any key
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=0,
        http_client=http_client,
    )


def retry_after(err: Exception) -> float | None:
    """Seconds the server asked us to wait, if it said so sensibly (finite, >= 0)."""
    response = getattr(err, "response", None)
    if response is None:
        return None
    headers = response.headers
    asked: float | None = None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            asked = float(ms) / 1000
        except ValueError:
            asked = None
    value = headers.get("retry-after")
    if asked is None and value is not None:
        try:
            asked = float(value)
        except ValueError:
            try:  # an HTTP date
                when = email.utils.parsedate_to_datetime(value).timestamp()
                asked = when - time.time()
            except (TypeError, ValueError, IndexError, OverflowError):
                asked = None
    if asked is None or math.isnan(asked):
        return None
    return max(0.0, asked)


def backoff_delay(attempt: int, settings: JudgeSettings, err: Exception) -> float:
    """Exponential backoff with jitter, at least Retry-After, at most ``max_backoff``."""
    base = min(settings.max_backoff, settings.backoff * 2**attempt)
    delay = base * (0.5 + random.random() / 2)
    asked = retry_after(err)
    if asked is not None:
        delay = max(delay, asked)
    return min(delay, settings.max_backoff)


def _deadline_hit(err: BaseException) -> bool:
    return isinstance(err.__cause__, DeadlineExceeded) or isinstance(
        err.__context__, DeadlineExceeded
    )


def _describe(err: Exception, settings: JudgeSettings, attempts: int | None = None) -> str:
    tries = f" after {attempts} attempts" if attempts else ""
    if _deadline_hit(err):
        return f"request deadline of {settings.deadline:g} s exceeded{tries}"
    return f"{type(err).__name__}{tries}: {err}"


def complete(
    client: openai.OpenAI,
    settings: JudgeSettings,
    messages: list[dict[str, str]],
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The judge's reply text for ``messages``; raises JudgeCallError when it gives up."""
    params = settings.request_params()
    for attempt in range(settings.max_retries + 1):
        try:
            response = client.chat.completions.create(
                model=settings.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=params["temperature"],
                max_tokens=params["max_tokens"],
            )
            return _content(response)
        except (*RETRYABLE, openai.APIStatusError) as err:
            status = getattr(err, "status_code", None)
            client_error = isinstance(err, openai.APIStatusError) and not isinstance(err, RETRYABLE)
            if client_error and status not in RETRYABLE_STATUS:  # 400, 401, 404: no retry
                message = f"HTTP {status} {type(err).__name__}: {err}"
                raise JudgeClientError(message, status) from err
            if attempt == settings.max_retries:
                raise JudgeCallError(
                    _describe(err, settings, attempt + 1), deadline_hit=_deadline_hit(err)
                ) from err
            delay = backoff_delay(attempt, settings, err)
            log.debug(
                "judge call failed (%s); retrying in %.2fs",
                redact(_describe(err, settings), settings.api_key),
                delay,
            )
            sleep(delay)
        except openai.APIError as err:  # anything else the client raises
            raise JudgeCallError(f"{type(err).__name__}: {err}") from err
    raise AssertionError("unreachable")


def _content(response: object) -> str:
    """The reply text; a list of text parts is joined, anything else is malformed."""
    try:
        content = response.choices[0].message.content  # type: ignore[attr-defined]
    except (AttributeError, IndexError, TypeError) as err:
        raise MalformedReply(f"not a chat completion: {str(response)[:200]}") from err
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise MalformedReply(f"message content is a {type(content).__name__}, not text")
