"""`python bench/run.py`: the same as `python -m bench`, from any directory."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    """Put the checkout on the import path and run the benchmark's command line."""
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench.cli import main as run

    return run(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
