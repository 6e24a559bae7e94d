"""Fault injection through the in-process runtime: every supervised fault, end to end."""
import pytest

from sim2real_bringup.drills import DRILLS


@pytest.mark.parametrize('name', sorted(DRILLS))
def test_drill(name):
    result = DRILLS[name]()
    assert result['reached_mode'] == result['expected_mode'], result
    assert result['in_time'], result
    assert result['fallback_ok'], result
    assert result['recovery_ok'], result
    assert result['unsafe_commands'] == 0, result
