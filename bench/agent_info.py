"""Entry point of :mod:`multipath_brick.tests.lab.bench.agent_info` (see its docstring).

Needs the package importable (installed, as tox installs it); from a checkout,
``python -m multipath_brick.tests.lab.bench.agent_info`` does the same.
"""

from multipath_brick.tests.lab.bench.agent_info import main

main()
