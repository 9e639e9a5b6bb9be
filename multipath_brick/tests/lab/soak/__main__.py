"""``python -m multipath_brick.tests.functional.soak`` (inside the lab guest)."""

import sys

from .runner import main

sys.exit(main())
