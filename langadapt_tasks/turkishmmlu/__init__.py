"""TurkishMMLU's lm-eval hooks (its data and subjects: ``benchmarks.turkishmmlu``)."""
