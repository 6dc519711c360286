"""CMMLU's lm-eval hooks (its data and subject table: ``benchmarks.cmmlu``)."""
