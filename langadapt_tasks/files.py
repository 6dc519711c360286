"""Reading the files users write (YAML configs and specs, JSON Lines), with clear errors.

One behaviour for every config file read through here (study configs, training configs,
mix specs, language specs):

* ``${VAR}`` in a string value is the environment variable's value (an error naming the
  file and key when it is unset or empty); ``${VAR:-default}`` falls back to ``default``
  when it is unset or empty, as in the shell. Only values are expanded, never keys; a
  ``$`` not followed by ``{`` is kept; a ``${`` that is not one of the two forms is an
  error. Types are checked after expansion, so ``${TURN2:-false}`` is the boolean false.
* A relative path is relative to the config file's folder. The one exception: a value
  that starts with an environment variable's value (``${DATA_DIR}/x`` with ``DATA_DIR``
  set) is taken as given, i.e. relative to the working directory, where the variable
  was set. ``~`` is the home folder.
* A value that may be a name or a path (a model: Hub id or folder; training data: a
  shipped mix or a file; a chat template: a shipped name or a file) is a path when it
  starts with ``./``, ``../``, ``/`` or ``~``, or when a file or folder of that name
  exists relative to the config file; otherwise it is the name, as written.
* Text files are UTF-8, with or without a byte-order mark; errors name the file and line.
  A JSON Lines file has one JSON object per line; blank lines are skipped.
* YAML aliases (``*name``) are read, but a file whose aliases expand past
  ``MAX_YAML_VALUES`` values or ``MAX_YAML_TEXT`` characters of text (a "billion laughs"),
  that nests deeper than ``MAX_YAML_DEPTH`` levels, or whose aliases refer to themselves, is
  refused, naming the file and the line, before anything walks its values. Every YAML file
  a user writes is read through ``read_yaml_mapping``.
* Booleans are ``true/false``, or a string ``true/false/yes/no/on/off/1/0``; a single
  string where a list is expected is a list of that one item; unknown keys are refused
  with the list of known ones; a key that looks like a secret (``api_key``, ``token``,
  ``password``, ...) is refused anywhere in the file: secrets come from the environment.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")  # ${VAR} / ${VAR:-default}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
# Key words that mark a secret; a key ending in ``_env`` names a variable instead.
_SECRET_WORDS = {
    "key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "bearer",
}
# Words that, with a secret word, still name only a secret (``openai_api_key``, ``hf_token``).
_SECRET_QUALIFIERS = {"api", "access", "private", "openai", "hf", "hub", "judge", "client", "my"}


# What a user's YAML file may expand to: every alias counts as a copy of what it names.
MAX_YAML_VALUES = 100_000  # mapping keys, values and list items
MAX_YAML_TEXT = 16 * 1024 * 1024  # characters of keys and values
MAX_YAML_DEPTH = 100  # nested mappings and lists


class YAMLTooLarge(yaml.YAMLError):
    """A YAML file past the bounds above; the message says which bound, and where."""


def _expanded_size(root: yaml.Node) -> None:
    """Refuse a node graph whose tree, with every alias expanded, passes the bounds.

    Aliases make the composed graph share nodes, so each node's expanded size is computed
    once (post-order, without recursion) and counted at every place that refers to it."""
    sizes: dict[int, tuple[int, int, int]] = {}  # id(node) -> (values, characters, depth)
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            values, chars, depth = 1, 0, 0
            for child in _children(node):
                v, c, d = sizes[id(child)]
                values, chars, depth = values + v, chars + c, max(depth, d)
            if isinstance(node, yaml.ScalarNode):
                chars = len(node.value)
            else:
                depth += 1
            sizes[key] = (values, chars, depth)
            line = node.start_mark.line + 1
            if values > MAX_YAML_VALUES:
                raise YAMLTooLarge(
                    f"line {line}: with its aliases (*name) written out, this value holds more "
                    f"than {MAX_YAML_VALUES:,} values; refused (a YAML 'billion laughs'?)"
                )
            if chars > MAX_YAML_TEXT:
                raise YAMLTooLarge(
                    f"line {line}: with its aliases (*name) written out, this value holds more "
                    f"than {MAX_YAML_TEXT:,} characters of text; refused"
                )
            if depth > MAX_YAML_DEPTH:
                raise YAMLTooLarge(f"line {line}: nested more than {MAX_YAML_DEPTH} levels deep")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YAMLTooLarge(
                f"line {node.start_mark.line + 1}: an alias (*name) refers to the value it is "
                "part of; refused"
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


_LIBYAML = getattr(yaml, "CSafeLoader", None)  # PyYAML built with libyaml: much faster


class BoundedLoader(_LIBYAML or yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader (on libyaml's parser when PyYAML has it: a 5 MB value reads in
    a tenth of a second, not 17 s) that refuses documents past the bounds above before
    building any Python value from them (see ``_expanded_size``)."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node)
        return node


def load_yaml(text: str) -> Any:
    """The one YAML document in ``text``, read by ``BoundedLoader``. Raises ``yaml.YAMLError``
    (``YAMLTooLarge`` past the bounds)."""
    if _LIBYAML is not None:
        _check_depth(text)  # libyaml's composer recurses in C: too deep, and Python crashes
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:  # PyYAML's composer recurses per level, before the depth check
        raise YAMLTooLarge(f"nested more than {MAX_YAML_DEPTH} levels deep") from None
    finally:
        loader.dispose()


def _check_depth(text: str) -> None:
    """Refuse mappings and lists nested past ``MAX_YAML_DEPTH``, from the parser's events
    (no recursion), before anything is composed."""
    depth = 0
    for event in yaml.parse(text, Loader=_LIBYAML):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise YAMLTooLarge(
                    f"line {event.start_mark.line + 1}: nested more than {MAX_YAML_DEPTH} "
                    "levels deep"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class ConfigText(str):
    """A value after ``${VAR}`` expansion; ``from_env``: it starts with a variable's value."""

    from_env: bool = False


def read_text(path: Path, error: type[Exception]) -> str:
    """A user's text file: UTF-8, with or without a byte-order mark. ``error`` names the
    file (and the line of the first bad byte) when it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot be read ({err})") from err
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise error(
            f"{path}, line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
            f"{err.start}); save the file as UTF-8"
        ) from err


def read_lines(path: Path, error: type[Exception]) -> Iterator[tuple[int, str]]:
    """(line number, text) of a user's UTF-8 file, streamed; a byte-order mark is dropped.
    ``error`` names the file (and the line of a bad byte) as ``read_text`` does."""
    try:
        fh = path.open("rb")
    except OSError as err:
        raise error(f"{path}: cannot be read ({err})") from err
    with fh:
        for number, raw in enumerate(fh, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise error(
                    f"{path}, line {number}: not UTF-8 text (byte 0x{raw[err.start]:02x} at "
                    f"column {err.start + 1}); save the file as UTF-8"
                ) from err


def iter_jsonl(
    path: Path, error: type[Exception], objects: bool = True
) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSON Lines file, streamed.

    A line that is not JSON, or (``objects``) not a JSON object, is an ``error`` naming
    the file and line."""
    for number, line in read_lines(path, error):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise error(
                f"{path}, line {number}: not JSON ({err.msg} at column {err.colno})"
            ) from None
        if objects and not isinstance(value, dict):
            raise error(
                f"{path}, line {number}: expected a JSON object, got {type(value).__name__}"
            )
        yield number, value


def read_jsonl(path: Path, error: type[Exception]) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) of each JSON object of a JSON Lines file; ``where`` is "FILE, line N"."""
    return [(f"{path}, line {number}", row) for number, row in iter_jsonl(path, error)]


def read_yaml_mapping(
    path: Path, error: type[Exception], what: str = "a mapping", empty_ok: bool = False
) -> dict[str, Any]:
    """The mapping in ``path``; ``error`` names the file when it is unreadable or not one."""
    text = read_text(path, error)
    try:
        data = load_yaml(text)
    except YAMLTooLarge as err:
        raise error(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: not YAML ({err})") from err
    except ValueError as err:  # a value YAML cannot build, e.g. an int of 5,000 digits
        raise error(f"{path}: a value cannot be read ({err})") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected {what}")
    return data


def key_path(parent: str, key: object) -> str:
    return f"{parent}.{key}" if parent else str(key)


def expand_vars(
    value: Any,
    path: Path,
    error: type[Exception],
    where: str = "",
    env: Mapping[str, str] | None = None,
) -> Any:
    """``value`` with ``${VAR}`` / ``${VAR:-default}`` expanded in every string (see above)."""
    env = os.environ if env is None else env
    if isinstance(value, dict):
        return {k: expand_vars(v, path, error, key_path(where, k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, path, error, f"{where}[{i}]", env) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    from_env = False

    def var(m: re.Match[str]) -> str:
        nonlocal from_env
        name, default = m.group(1), m.group(2)
        if env.get(name):
            from_env = from_env or m.start() == 0
            return env[name]
        if default is not None:
            return default
        raise error(
            f"{path}: {where}: ${{{name}}} is not set in the environment; set it or write "
            f"${{{name}:-default}}"
        )

    text = _VAR.sub(var, value)
    if "${" in _VAR.sub("", value):
        raise error(
            f"{path}: {where}: {shown(value)}: write ${{VAR}} or ${{VAR:-default}} "
            "(a variable name of letters, digits and _)"
        )
    out = ConfigText(text)
    out.from_env = from_env
    return out


def resolve_path(value: str, base: Path) -> Path:
    """A path value of a config file in ``base`` (see the module's rule)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if getattr(value, "from_env", False):
        return path.resolve()  # a variable's value: relative to the working directory
    return (base / path).resolve()


def path_or_name(value: str, base: Path) -> Path | str:
    """A value that is a name or a path, in a config file in ``base`` (see the module's
    rule): the path when the value is written as one or names something that exists,
    else the value as written."""
    text = str(value)
    explicit = text.startswith(("./", "../", "/", "~")) or text in (".", "..")
    path = resolve_path(value, base)
    return path if explicit or path.exists() else value


def plain(value: Any) -> Any:
    """``value`` with every expanded string (``ConfigText``) a plain ``str`` again, e.g.
    before it is written back to YAML."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


def looks_secret(key: object) -> bool:
    words = re.split(r"[_\-\s.]+", str(key).lower())
    if words and words[-1] == "env":
        return False
    return bool(_SECRET_WORDS.intersection(words)) or "apikey" in str(key).lower()


def _only_secret_words(key: object) -> bool:
    """Whether a key is nothing but the name of a secret (``api_key``, ``HF_TOKEN``, ``key``),
    unlike a key that merely ends in one of the words (``bogus_key``)."""
    words = [w for w in re.split(r"[_\-\s.]+", str(key).lower()) if w]
    return looks_secret(key) and all(w in _SECRET_WORDS or w in _SECRET_QUALIFIERS for w in words)


_SECRET_ADVICE = (
    "keys and passwords never go in a config file (it is copied into logs and results). Set "
    "the environment variable instead (the judge's key: OPENAI_API_KEY or "
    "LANGADAPT_JUDGE_API_KEY)."
)


def refuse_secrets(data: Any, path: Path, error: type[Exception], where: str = "") -> None:
    """Refuse any key, at any depth, that looks like a secret; name the key path."""
    if isinstance(data, dict):
        for key, value in data.items():
            here = key_path(where, key)
            if looks_secret(key):
                raise error(f"{path}: {here}: looks like a secret; {_SECRET_ADVICE}")
            refuse_secrets(value, path, error, here)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            refuse_secrets(value, path, error, f"{where}[{i}]")


def check_keys(
    data: Mapping[str, Any], known: Iterable[str], path: Path, error: type[Exception], where=""
) -> None:
    """Refuse keys not in ``known``, naming them with the close known ones and listing the
    known ones. A key that is only a secret's name (``api_key``) also gets the advice of
    ``refuse_secrets``; nothing else about the values is looked at, so run this before
    walking them."""
    known = [str(k) for k in known]
    unknown = [k for k in data if k not in known]
    if not unknown:
        return
    shown = ", ".join(key_path(where, k) for k in unknown)
    close = [c for k in unknown for c in difflib.get_close_matches(str(k), known, n=3)]
    message = (
        f"{path}: unknown key(s) {shown}; known keys"
        + (f" of {where}" if where else "")
        + f": {', '.join(known)}"
    )
    if close:
        message += f"; did you mean {', '.join(dict.fromkeys(close))}?"
    secret = [key_path(where, k) for k in unknown if _only_secret_words(k)]
    if secret:
        message += f" {', '.join(secret)}: looks like a secret; {_SECRET_ADVICE}"
    raise error(message)


def _from_text(value: Any, kind: type) -> Any:
    """A number written as text (``"3"``, ``"1e-4"``) as ``kind``; anything else unchanged."""
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    return value


class Fields:
    """Typed values of one config file, with errors that name the file and key path."""

    def __init__(self, path: Path, error: type[Exception]) -> None:
        self.file, self.error = path, error

    def bad(self, where: str, message: str) -> Exception:
        return self.error(f"{self.file}: {where}: {message}")

    def mapping(self, value: Any, where: str, known: Iterable[str] | None = None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.bad(where, f"expected a mapping of keys, got {shown(value)}")
        if known is not None:
            check_keys(value, known, self.file, self.error, where)
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise self.bad(
            where, f"expected true or false (or yes/no, on/off, 1/0), got {shown(value)}"
        )

    def integer(self, value: Any, where: str, minimum: int | None = None) -> int:
        out = _from_text(value, int)
        if isinstance(out, bool) or not isinstance(out, int):
            raise self.bad(where, f"expected a whole number, got {shown(value)}")
        if minimum is not None and out < minimum:
            raise self.bad(where, f"expected a number >= {minimum}, got {shown(out)}")
        return out

    def number(self, value: Any, where: str) -> float:
        """A finite number: ``nan``, ``inf`` and ``1e999`` (infinite as a float) are refused."""
        out = _from_text(value, float)
        if isinstance(out, bool) or not isinstance(out, (int, float)):
            raise self.bad(where, f"expected a number, got {shown(value)}")
        try:
            number = float(out)
        except OverflowError:  # a whole number too large for a float
            number = math.inf
        if not math.isfinite(number):
            raise self.bad(where, f"expected a finite number, got {shown(value)}")
        return number

    def text(self, value: Any, where: str, empty_ok: bool = False) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.bad(where, f"expected a text value, got {shown(value)}")
        if not isinstance(value, str):
            value = str(value)  # a number written where a name is expected, e.g. a batch size
        if not value.strip() and not empty_ok:
            raise self.bad(where, "is empty")
        return value

    def text_list(self, value: Any, where: str) -> list[str]:
        """A list of texts; a single text is a list of that one item."""
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.bad(where, f"expected a list, got {shown(value)}")
        return [self.text(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def path(self, value: Any, where: str) -> Path:
        if not isinstance(value, str):
            raise self.bad(where, f"expected a path, got {shown(value)}")
        return resolve_path(self.text(value, where), self.file.parent)


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: its kind for a mapping or list, else its
    ``repr``, shortened past ``limit`` characters."""
    kind = {dict: "a mapping", list: "a list", bool: "a boolean"}.get(type(value))
    if kind:
        return kind
    try:
        shown = repr(value)
    except ValueError:  # an int too long to print in decimal
        return "a number too large"
    return shown if len(shown) <= limit else f"{shown[: limit - 15]}... ({len(shown):,} chars)"
