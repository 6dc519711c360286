import sys

from langadapt_train.cli import main

sys.exit(main())
