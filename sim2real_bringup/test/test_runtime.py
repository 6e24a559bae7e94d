"""The scheduler keeps simulated time exactly; the graph delivers like ROS 2, in order."""
import pytest

from sim2real_bringup import interfaces as ifc
from sim2real_bringup.runtime import Graph, Scheduler, TopicTypeError

CMD = 'sim2real_msgs/msg/CartesianCommand'


def test_timer_fires_at_exact_multiples_without_drift():
    sched = Scheduler()
    fired = []
    sched.create_timer(0.01, lambda: fired.append(sched.now_ns))
    sched.run_for(10.0)
    assert len(fired) == 1000
    assert fired == [10_000_000 * k for k in range(1, 1001)]
    assert sched.now_ns == 10_000_000_000


def test_same_instant_events_run_in_scheduling_order():
    sched = Scheduler()
    order = []
    sched.call_later(0.5, lambda: order.append('a'))
    sched.call_later(0.5, lambda: order.append('b'))
    sched.call_later(0.1, lambda: order.append('first'))
    sched.run_for(1.0)
    assert order == ['first', 'a', 'b']


def test_cancelled_timer_stops_and_past_events_are_refused():
    sched = Scheduler()
    fired = []
    timer = sched.create_timer(0.1, lambda: fired.append(1))
    sched.run_for(0.35)
    timer.cancel()
    sched.run_for(1.0)
    assert len(fired) == 3 and timer.cancelled
    with pytest.raises(ValueError, match='past'):
        sched.call_at(0, lambda: None)
    with pytest.raises(ValueError, match='period'):
        sched.create_timer(0.0, lambda: None, 'bad')
    with pytest.raises(ValueError, match='finite'):
        sched.call_later(float('nan'), lambda: None)


def _command(sched, x):
    return ifc.make(CMD, header=ifc.header(sched.now_ns), x=float(x))


def test_delivery_is_asynchronous_ordered_and_delayed():
    sched = Scheduler()
    graph = Graph(sched)
    pub = graph.create_publisher('/cmd', CMD)
    now_rx, late_rx = [], []
    graph.create_subscription('/cmd', CMD, lambda m: now_rx.append((sched.now_ns, m.x)))
    graph.create_subscription('/cmd', CMD, lambda m: late_rx.append((sched.now_ns, m.x)),
                              latency_s=0.25)
    pub.publish(_command(sched, 1))
    pub.publish(_command(sched, 2))
    assert now_rx == []  # a publish never runs a callback synchronously
    sched.run_for(0.1)
    assert now_rx == [(0, 1.0), (0, 2.0)]
    assert late_rx == []
    sched.run_for(0.2)
    assert late_rx == [(250_000_000, 1.0), (250_000_000, 2.0)]


def test_latency_can_change_mid_run():
    sched = Scheduler()
    graph = Graph(sched)
    pub = graph.create_publisher('/cmd', CMD)
    rx = []
    sub = graph.create_subscription('/cmd', CMD, lambda m: rx.append(sched.now_ns))
    pub.publish(_command(sched, 0))
    sched.run_for(0.1)
    sub.set_latency(1.5)
    pub.publish(_command(sched, 1))
    sched.run_for(2.0)
    assert rx == [0, 1_600_000_000]


def test_topic_has_one_type_and_types_must_exist():
    graph = Graph(Scheduler())
    graph.create_publisher('/cmd', CMD)
    with pytest.raises(TopicTypeError, match='/cmd carries sim2real_msgs/msg/CartesianCommand'):
        graph.create_subscription('/cmd', 'sim2real_msgs/msg/RobotState', print)
    with pytest.raises(ifc.UnknownMessageTypeError, match='sim2real_msgs/msg/Nope'):
        graph.create_publisher('/x', 'sim2real_msgs/msg/Nope')
    with pytest.raises(ValueError, match='absolute'):
        graph.create_publisher('cmd', CMD)


def test_publishing_a_malformed_message_names_the_field():
    sched = Scheduler()
    graph = Graph(sched)
    pub = graph.create_publisher('/cmd', CMD)
    msg = ifc.default_message(CMD)
    msg.gripper_width = '8 cm'
    with pytest.raises(ifc.MessageFieldError, match='CartesianCommand.gripper_width'):
        pub.publish(msg)
    with pytest.raises(ifc.MessageFieldError, match='expected a sim2real_msgs/msg/Cartesian'):
        pub.publish(ifc.default_message('sim2real_msgs/msg/RobotState'))
