"""MT-Bench's lm-eval hooks and samples folder (its questions and fidelity: ``benchmarks``)."""
