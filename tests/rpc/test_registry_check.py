"""Parameter schemas are enforced as advertised (pure: the registry's `check`)."""

from __future__ import annotations

import pytest

from sipd.rpc.errors import RpcError
from sipd.rpc.registry import check

DIGITS = {"type": "string", "minLength": 1, "maxLength": 31, "pattern": "^[0-9*#A-Da-d]+$"}


@pytest.mark.parametrize("value", ["1", "19#*", "A" * 31])
def test_a_string_within_the_schema_passes(value):
    check(value, DIGITS, "digits")


@pytest.mark.parametrize("value, message", [
    ("", "must not be empty"),
    ("1" * 32, "at most 31 characters"),
    ("12x", "must match"),
    ("1\n", "must match"),
])
def test_a_string_outside_the_schema_is_invalid_params(value, message):
    with pytest.raises(RpcError) as error:
        check(value, DIGITS, "digits")
    assert error.value.code == -32602 and message in error.value.data["reason"]
