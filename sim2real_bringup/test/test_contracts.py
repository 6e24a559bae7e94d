"""The cores' enums carry the same numbers as the message constants they are published as."""
import pytest

from sim2real_bringup import interfaces as ifc
from sim2real_safety.limits import Reaction, Verdict
from sim2real_safety.supervisor import Mode


@pytest.mark.parametrize('enum, typename, prefix', [
    (Verdict, 'sim2real_msgs/msg/SafetyStatus', 'VERDICT_'),
    (Reaction, 'sim2real_msgs/msg/ConstraintViolation', 'REACTION_'),
    (Mode, 'sim2real_msgs/msg/SupervisorState', 'MODE_'),
])
def test_enum_matches_message_constants(enum, typename, prefix):
    constants = {name[len(prefix):]: value for name, value in ifc.constants(typename).items()
                 if name.startswith(prefix)}
    assert constants == {member.name: member.value for member in enum}


def test_pipeline_safety_source_matches_the_message():
    from sim2real_safety.nodes.safety_node import SOURCE_SAFETY
    assert ifc.constants('sim2real_msgs/msg/CartesianCommand')['SOURCE_SAFETY'] == SOURCE_SAFETY


def test_the_filter_accepts_exactly_the_proposal_sources_of_the_message():
    from sim2real_safety.filter import PROPOSAL_SOURCES
    sources = {name: value for name, value in
               ifc.constants('sim2real_msgs/msg/CartesianCommand').items()
               if name.startswith('SOURCE_')}
    assert PROPOSAL_SOURCES == {v for name, v in sources.items() if name != 'SOURCE_SAFETY'}


def test_the_calibration_check_matches_the_message():
    from sim2real_policy.calibration_check import CheckState
    from sim2real_safety.nodes.supervisor_node import CALIBRATION_SUSPECT
    constants = {name[len('CALIBRATION_'):]: value for name, value in
                 ifc.constants('sim2real_msgs/msg/PolicyHealth').items()
                 if name.startswith('CALIBRATION_')}
    assert constants == {member.name: member.value for member in CheckState}
    assert constants['SUSPECT'] == CALIBRATION_SUSPECT


def test_the_commissioning_source_matches_the_message():
    from sim2real_bringup.nodes.commissioning_node import SOURCE_COMMISSIONING
    from sim2real_safety import filter as safety_filter
    value = ifc.constants('sim2real_msgs/msg/CartesianCommand')['SOURCE_COMMISSIONING']
    assert value == SOURCE_COMMISSIONING == safety_filter.SOURCE_COMMISSIONING
