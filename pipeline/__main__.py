"""`python -m pipeline` is the same as the `ds-pipeline` console script."""

import sys

from pipeline.cli import main

sys.exit(main())
