"""`python -m bench`: run the load benchmark."""

from __future__ import annotations

import sys

from bench.cli import main

raise SystemExit(main(sys.argv[1:]))
