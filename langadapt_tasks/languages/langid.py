"""py3langid's language identifier: the codes a spec's ``fidelity`` may name."""

from __future__ import annotations

import functools


@functools.cache
def identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE)


def known_codes() -> list[str]:
    """The language codes py3langid can identify."""
    return list(identifier().nb_classes)
