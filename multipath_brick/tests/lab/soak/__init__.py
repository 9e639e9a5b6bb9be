"""The soak: many volumes attached and detached at once under injected faults.

Runs only inside the lab guest (``python -m multipath_brick.tests.lab
soak -- ARGS`` boots one and runs :mod:`.runner` there; ``tox -e soak`` does the
same). Split by concern:

- :mod:`.params`: the knobs and the seeded fault plan,
- :mod:`.fleet`: the volumes (attach, checksummed write, read back, detach),
- :mod:`.chaos`: the thread that drops portals (iptables) and adds latency (netem),
- :mod:`.leftovers`: what a round may leave behind,
- :mod:`.report`: counters and the final table,
- :mod:`.runner`: the rounds.
"""
