"""lm-eval model backends: ``langadapt-hf``, the ``hf`` backend with shared-prefix KV reuse."""
