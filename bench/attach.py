"""Entry point of :mod:`multipath_brick.tests.lab.bench.fake_attach` (see its docstring).

Needs the package importable (installed, as tox installs it); from a checkout,
``python -m multipath_brick.tests.lab.bench.fake_attach`` does the same.
"""

from multipath_brick.tests.lab.bench.fake_attach import main

main()
