"""Benchmarks: the lab's (inside the QEMU guest) and the FakeHost's (anywhere).

Each prints a table and asserts nothing. The lab ones run inside the guest
(``python -m multipath_brick.tests.lab bench``); the FakeHost ones run on any
machine (``tox -e bench``, ``python -m multipath_brick.tests.lab.bench.fake_attach``).
"""
