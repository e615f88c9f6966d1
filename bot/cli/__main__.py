"""`python -m bot.cli ARGS` runs the same `main` as the `daraja` console script."""

import sys

from bot.cli import main

sys.exit(main())
