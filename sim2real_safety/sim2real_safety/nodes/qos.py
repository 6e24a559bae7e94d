"""The suite's QoS profiles, chosen once.

Commands: reliable, only the latest (a stale command is worth nothing). Latched state
(supervisor mode, safety status): reliable and transient local, so a late joiner gets it.
Sensor streams use rclpy's ``qos_profile_sensor_data`` (best effort), which also accepts
reliable publishers.
"""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

COMMAND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
