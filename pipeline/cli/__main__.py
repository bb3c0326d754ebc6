"""``python -m pipeline.cli``: the same as ``cloudglue-pipeline`` (the benchmarks run it so)."""

import sys

from pipeline.cli import main

sys.exit(main())
