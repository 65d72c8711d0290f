"""`python -m edge_gateway`: run an edge gateway."""

from __future__ import annotations

import sys

from edge_gateway.app import EdgeApp
from edge_gateway.config import load_settings
from meeting_common.lifecycle import main

if __name__ == "__main__":
    sys.exit(main(load_settings, EdgeApp))
