"""The benchmarks' data: questions, subject tables, checks and scores, below the judge.

``mcdata`` (the multiple-choice loader CMMLU and TurkishMMLU share), ``cmmlu`` /
``cmmlu_subjects``, ``turkishmmlu`` / ``turkishmmlu_subjects``, ``mtbench`` (questions per
language) and ``fidelity`` (answer language share), ``scoring`` (the two score views) and
``eval_questions`` (every evaluation question, for decontamination). No lm-eval here: the
lm-eval hooks that use these sit in ``cmmlu/``, ``turkishmmlu/`` and ``mtbench/``.
"""
