"""A loopback OpenAI-compatible chat-completions server for the MT-Bench judge tests.

Real HTTP on 127.0.0.1 (stdlib ``http.server`` in a thread), driven by the
real ``openai`` client. Each test scripts it with ``server.responder``: a
function ``(body, n) -> Reply`` of the request body and the request's
sequence number (0-based), so a test can send 429s (with any Retry-After),
401s, 5xx, slow, trickling or malformed replies, or a message whose
``content`` is not a string, before a normal verdict.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TEXT = object()  # Reply.content default: the message content is ``text``


@dataclass
class Reply:
    text: str | None = None  # the judge's message content (status 200)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    raw: bytes | None = None  # send these bytes instead of a chat completion
    content: Any = _TEXT  # any JSON value as the message content (a list, a dict, a number)
    trickle: float = 0.0  # seconds between single bytes of the body (headers go at once)


def verdict_for(body: dict[str, Any], paper: str = "4", fastchat: str = "Rating: [[7]]") -> Reply:
    """A well-formed verdict in the format the request's rubric asks for."""
    return Reply(fastchat if "[[rating]]" in all_text(body) else paper)


def all_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"])


def prompt_of(body: dict[str, Any]) -> str:
    """The judge prompt: the first user message (after a system message, if any)."""
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


_ANSWER_FORMS = (
    r"<<<(?:ANSWER-[0-9A-F]{16})>>>\n(.*?)\n<<<END-ANSWER-[0-9A-F]{16}>>>",  # guarded rubrics
    r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End of Assistant's Answer\]",
    r"### Assistant A:\n(.*?)\n\n(?=### User:|<\|The End)",  # FastChat, multi-turn
    r"(?:^|\n)AI: (.*?)(?=\n\nHuman: |\nScore:)",  # the study's layout (paper)
)


def judged_answer(body: dict[str, Any], index: int = -1) -> str:
    """The (last, by default) answer text in a judge prompt, whatever the rubric."""
    prompt = prompt_of(body)
    for form in _ANSWER_FORMS:
        if blocks := re.findall(form, prompt, flags=re.DOTALL):
            return blocks[index]
    raise ValueError(f"no answer found in the judge prompt: {prompt[:200]!r}")


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog (5) drops bursts of connections, which
    # the client then retries a second later; a judge under load must not look like that.
    request_queue_size = 128


class JudgeServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.responder: Callable[[dict[str, Any], int], Reply] = lambda body, n: verdict_for(body)
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    n = len(server.requests)
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    reply = server.responder(body, n)
                    if reply.delay:
                        time.sleep(reply.delay)
                    self._send(reply, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, reply: Reply, body: dict[str, Any]) -> None:
                if reply.raw is not None:
                    data = reply.raw
                elif reply.status == 200:
                    data = json.dumps(
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": body.get("model", "judge"),
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {
                                        "role": "assistant",
                                        "content": reply.text
                                        if reply.content is _TEXT
                                        else reply.content,
                                    },
                                }
                            ],
                            "usage": {
                                "prompt_tokens": 1,
                                "completion_tokens": 1,
                                "total_tokens": 2,
                            },
                        }
                    ).encode()
                else:
                    data = json.dumps(
                        {"error": {"message": f"scripted {reply.status}", "type": "test"}}
                    ).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if not reply.trickle:
                    self.wfile.write(data)
                    return
                self.wfile.flush()
                for i in range(len(data)):  # one byte at a time: every read is quick
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(reply.trickle)

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> JudgeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
