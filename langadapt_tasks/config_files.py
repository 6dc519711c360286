"""Reading the YAML files users write (language specs, study configs), with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml_mapping(
    path: Path, error: type[Exception], what: str = "a mapping", empty_ok: bool = False
) -> dict[str, Any]:
    """The mapping in ``path``; ``error`` names the file when it is unreadable or not one."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise error(f"{path}: cannot be read ({err})") from err
    except yaml.YAMLError as err:
        raise error(f"{path}: not YAML ({err})") from err
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected {what}")
    return data
