"""The in-process runtime: the suite's cores wired on a simulated clock, without ROS.

``Scheduler`` is a deterministic discrete-event loop over integer nanoseconds; ``Graph`` gives
it ROS-like topics (same names and types as the ROS graph) with optional per-subscription
delivery latency for fault and latency injection. Everything published can be tapped by a
``sim2real_bringup.bag.BagRecorder`` into a real rosbag2 (MCAP) file.
"""
from sim2real_bringup.runtime.graph import Graph, Publisher, Subscription, TopicTypeError
from sim2real_bringup.runtime.scheduler import Scheduler, Timer

__all__ = ['Graph', 'Publisher', 'Scheduler', 'Subscription', 'Timer', 'TopicTypeError']
