"""Entry point of :mod:`multipath_brick.tests.lab.bench.fake_scaling` (see its docstring).

Needs the package importable (installed, as tox installs it); from a checkout,
``python -m multipath_brick.tests.lab.bench.fake_scaling`` does the same.
"""

from multipath_brick.tests.lab.bench.fake_scaling import main

main()
