"""``python -m langadapt_train``: the ``langadapt-train`` command."""

import sys

from langadapt_train.cli import main

sys.exit(main())
