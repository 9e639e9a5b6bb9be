"""``python -m multipath_brick.tests.lab.soak`` (inside the lab guest)."""

import sys

from .runner import main

sys.exit(main())
