"""Where the running ``lm_eval`` command writes its samples, read from its command line.

lm-eval does not tell tasks its ``--output_path``; the verdict JSONL goes next
to the samples, which lm-eval writes to ``OUTPUT_PATH/<sanitized model name>/``
(or beside ``OUTPUT_PATH`` when it names a ``.json`` file). Set
``LANGADAPT_JUDGE_OUTPUT`` (or ``--metadata judge_output``) to choose instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def samples_dir(argv: list[str] | None = None) -> Path | None:
    """lm-eval's samples directory for ``argv`` (default ``sys.argv``), or None.

    Only the ``lm_eval`` command line is read: another program's ``-o`` means
    something else (the Python API gives no output path; set ``judge_output``).
    """
    argv = sys.argv if argv is None else argv
    if not argv:
        return None
    program = Path(argv[0]).name
    if not (program.startswith(("lm_eval", "lm-eval")) or argv[0].endswith("lm_eval/__main__.py")):
        return None
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--output_path", "-o", default=None)
    parser.add_argument("--model_args", "-a", default="")
    args, _ = parser.parse_known_args(argv[1:])
    if not args.output_path:
        return None
    path = Path(args.output_path)
    if path.suffix == ".json":
        return path.parent
    from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker
    from lm_eval.utils import sanitize_model_name

    name = GeneralConfigTracker._get_model_name(args.model_args)
    return path / sanitize_model_name(name) if name else path
