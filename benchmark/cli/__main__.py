"""`python -m benchmark.cli` runs the `onionbench` command."""

import sys

from benchmark.cli import main

sys.exit(main())
