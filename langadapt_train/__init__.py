"""langadapt-train: LoRA / QLoRA instruction tuning that produces adapters lm-eval loads."""

__all__ = ["config", "decontam", "presets", "templates", "trainer"]
