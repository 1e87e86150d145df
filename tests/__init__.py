"""The test suite. Shared helpers live in tests.helpers; their asserts get pytest's rewriting."""

import pytest

pytest.register_assert_rewrite("tests.helpers")
