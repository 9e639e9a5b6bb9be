"""Shared by the unit and functional suites."""

import pytest

# The shared scenarios are plain functions in a helper module: have pytest
# rewrite their asserts too, so a failure on either host says what differed.
pytest.register_assert_rewrite("multipath_brick.tests.scenarios")
