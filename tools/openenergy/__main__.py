"""`python -m openenergy …` runs the CLI (same as the `openenergy` command)."""

import sys

from openenergy.cli import main

sys.exit(main())
