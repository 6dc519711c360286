"""langadapt_tasks.files: the one reader of users' JSON Lines files, and the name-or-path rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from langadapt_tasks.files import ConfigText, iter_jsonl, path_or_name, plain, read_jsonl


class Bad(ValueError):
    """The caller's own error class, which the reader must raise."""


def test_rows_name_file_and_line_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"b": "ç"}\r\n{"c": [1, 2]}', "utf-8")
    assert read_jsonl(path, Bad) == [
        (f"{path}, line 1", {"a": 1}),
        (f"{path}, line 4", {"b": "ç"}),
        (f"{path}, line 5", {"c": [1, 2]}),
    ]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"soru": "Bir renk s\xc3\xb6yle."}\n')
    assert read_jsonl(path, Bad) == [(f"{path}, line 1", {"soru": "Bir renk söyle."})]


def test_a_bad_json_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,}\n{"a": 3}\n', "utf-8")
    with pytest.raises(Bad, match=rf"^{re.escape(str(path))}, line 3: not JSON \("):
        read_jsonl(path, Bad)


def test_a_line_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n', "utf-8")
    with pytest.raises(Bad, match=rf"^{re.escape(str(path))}, line 2: expected a JSON object"):
        read_jsonl(path, Bad)
    # A caller that counts such rows itself gets them as they are.
    assert list(iter_jsonl(path, Bad, objects=False)) == [(1, {"a": 1}), (2, [1, 2])]


def test_text_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "s\xf6yle"}\n')  # ISO-8859-9, not UTF-8
    with pytest.raises(Bad, match=r"latin\.jsonl, line 2: not UTF-8 text \(byte 0xf6"):
        read_jsonl(path, Bad)


def test_a_missing_file_is_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(Bad, match=r"nothing\.jsonl: cannot be read"):
        read_jsonl(tmp_path / "nothing.jsonl", Bad)


def test_path_or_name(tmp_path: Path) -> None:
    (tmp_path / "local-model").mkdir()
    (tmp_path / "chat.jinja").write_text("x", "utf-8")
    base = tmp_path.resolve()
    assert path_or_name("./m", tmp_path) == base / "m"  # written as a path, even if missing
    assert path_or_name("../m", tmp_path) == base.parent / "m"
    assert path_or_name("/opt/m", tmp_path) == Path("/opt/m")
    assert path_or_name("~/m", tmp_path) == Path.home() / "m"
    assert path_or_name("local-model", tmp_path) == base / "local-model"  # exists next to it
    assert path_or_name("chat.jinja", tmp_path) == base / "chat.jinja"
    assert path_or_name("meta-llama/Meta-Llama-3-8B", tmp_path) == "meta-llama/Meta-Llama-3-8B"
    assert path_or_name("zh-mix", tmp_path) == "zh-mix"


def test_plain_strings() -> None:
    text = ConfigText("runs/x")
    text.from_env = True
    out = plain({"a": [text], "b": 3, "c": None})
    assert out == {"a": ["runs/x"], "b": 3, "c": None}
    assert type(out["a"][0]) is str
