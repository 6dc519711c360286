"""Where the running lm-eval evaluation writes its samples (the verdicts go next to them).

lm-eval gives tasks no handle on its output settings. The one object that holds
them is the ``EvaluationTracker`` that ``simple_evaluate`` (the ``lm_eval`` command
and the Python API alike) receives and writes results and samples with; the metric
aggregations run inside that call, so it is found on the call stack. Its
``output_path`` and the model name it computed give lm-eval's own samples folder
(``OUTPUT_PATH/<sanitized model name>/``, or beside ``OUTPUT_PATH`` when that names a
``.json`` file). Set ``LANGADAPT_JUDGE_OUTPUT`` (or ``--metadata judge_output``) to
choose another folder, or when lm-eval is run without an output path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType

from lm_eval.loggers.evaluation_tracker import EvaluationTracker


def running_tracker(frame: FrameType | None = None) -> EvaluationTracker | None:
    """The ``EvaluationTracker`` of the ``simple_evaluate`` call this code runs in, if any."""
    frame = frame or sys._getframe(1)
    while frame is not None:
        tracker = frame.f_locals.get("evaluation_tracker")
        if isinstance(tracker, EvaluationTracker):
            return tracker
        frame = frame.f_back
    return None


def samples_dir(tracker: EvaluationTracker | None = None) -> Path | None:
    """The folder lm-eval writes this run's samples to; None without an output path."""
    tracker = tracker or running_tracker()
    if tracker is None or not tracker.output_path:
        return None
    path = Path(tracker.output_path)
    if path.suffix == ".json":
        return path.parent
    name = getattr(tracker.general_config_tracker, "model_name_sanitized", None)
    return path / str(name) if name else path
