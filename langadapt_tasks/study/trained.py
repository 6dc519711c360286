"""Whether a finished adapter was trained with the settings the study asks for now.

The train step counts a preset as done once its folder has ``training_complete.json``. A
setting changed since (``train.overrides``, a model's or language's ``overrides``) would
otherwise leave the old adapter in place, silently; its saved settings
(``langadapt_train.yaml``) say what it was trained with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from langadapt_train.outputs import CONFIG_NAME


def _same(saved: Any, wanted: Any) -> bool:
    if isinstance(saved, bool) or isinstance(wanted, bool):
        return saved is wanted
    if isinstance(saved, (int, float)) and isinstance(wanted, (int, float)):
        return float(saved) == float(wanted)
    return str(saved) == str(wanted)


def changed_settings(adapter: Path, overrides: dict[str, Any]) -> list[str]:
    """``key: trained with X, asked for Y`` for each override the adapter was trained without;
    [] when its saved settings agree or cannot be read (an adapter trained elsewhere)."""
    try:
        saved = yaml.safe_load((adapter / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(saved, dict):
        return []
    return [
        f"{key}: trained with {saved[key]!r}, asked for {value!r}"
        for key, value in overrides.items()
        if key in saved and not _same(saved[key], value)
    ]
