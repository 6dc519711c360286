"""The held-out loss task's lm-eval hooks (its data: ``benchmarks.heldout``)."""
