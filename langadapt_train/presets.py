"""LoRA presets from the study: rank / alpha pairs, all at learning rate 1.6e-5."""

from __future__ import annotations

STUDY_LR = 1.6e-5

PRESETS: dict[str, dict[str, float | int]] = {
    "r8-a32": {"lora_r": 8, "lora_alpha": 32, "learning_rate": STUDY_LR},
    "r16-a32": {"lora_r": 16, "lora_alpha": 32, "learning_rate": STUDY_LR},
    "r16-a48": {"lora_r": 16, "lora_alpha": 48, "learning_rate": STUDY_LR},
}


def preset_values(name: str) -> dict[str, float | int]:
    """The fields a preset sets; an unknown name is an error listing the known ones."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])
