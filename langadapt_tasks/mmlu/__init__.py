"""English MMLU's lm-eval hooks (its data and subjects: ``benchmarks.mmlu``)."""
