"""``python -m langadapt_tasks``: the ``langadapt`` command."""

from langadapt_tasks.cli import main

raise SystemExit(main())
