"""Every node creates exactly the type and QoS of the topic table (topics.py), on every graph.

The graphs are built from the very node classes the robot runs, so what is checked here is
what the rclpy nodes create too (the ros-marked test_ros_graph.py checks it over DDS).
"""
import pytest

from sim2real_bringup import launch_graph as lg
from sim2real_bringup.calibrate import record_calibration
from sim2real_bringup.collect import collect_session
from sim2real_bringup.pipeline import Pipeline, PipelineConfig
from sim2real_bringup.topics import BY_NAME
from sim2real_policy.sim.params import SimParams


def _check(endpoints):
    assert endpoints
    for node, kind, topic, typename, qos in endpoints:
        if kind == 'service' or node in ('recorder', 'device', 'operator'):
            continue  # services have no QoS here; test probes choose their own
        assert topic in BY_NAME, f'{node} {kind} on {topic}: not in the topic table'
        expected = BY_NAME[topic]
        assert (typename, qos) == (expected.typename, expected.qos), (node, kind, topic)


@pytest.mark.parametrize('policy', ['bundled', 'expert'])
def test_the_full_stack_creates_the_table(policy):
    pipe = Pipeline(PipelineConfig.load(), lambda i: SimParams(seed=i), policy=policy)
    pipe.run_for(0.3)
    pipe.close()
    _check(pipe.graph.endpoints)
    nodes = {e[0] for e in pipe.graph.endpoints}
    assert {'camera_node', 'policy_node', 'control_node', 'safety_node', 'supervisor_node',
            'logger_node', 'sim_robot_node'} <= nodes


def test_the_collection_graph_creates_the_table():
    pipe = Pipeline(PipelineConfig.load(), lambda i: SimParams(seed=i), policy='expert',
                    remaps=lg.COLLECT_REMAPS)
    collect_session(pipe, 'policy', 'Ada')
    pipe.run_for(0.3)
    pipe.close()
    _check(pipe.graph.endpoints)
    assert 'collect_node' in {e[0] for e in pipe.graph.endpoints}


def test_the_calibration_graph_creates_the_table():
    seen = []
    record_calibration(SimParams(), {'calibration_node': {'seeds': [0], 'duration': 0.5}},
                       setup=lambda graph: seen.append(graph))
    _check(seen[0].endpoints)
    assert 'calibration_node' in {e[0] for e in seen[0].endpoints}


def test_a_topic_used_with_another_qos_fails_the_contract():
    with pytest.raises(AssertionError):
        _check([('some_node', 'publisher', '/safety/command',
                 'sim2real_msgs/msg/CartesianCommand', 'sensor')])
