"""``python -m multipath_brick.tests.lab``: the lab's command line (see :mod:`.cli`)."""

import sys

from .cli import main

sys.exit(main())
