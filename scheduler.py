"""The long-running Thursday job from a checkout: `python scheduler.py`.

A thin wrapper: an installed copy runs the same thing as `jeudis scheduler`.
"""

from __future__ import annotations

import sys

from newsletter.cli import main
from newsletter.scheduler import make_scheduler

__all__ = ["make_scheduler"]

if __name__ == "__main__":
    sys.exit(main(["scheduler"]))
