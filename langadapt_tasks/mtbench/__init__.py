"""MT-Bench: questions per language, language fidelity and the lm-eval hooks that judge."""
