"""The suite's ROS graph in one place: topic and service names, their types and QoS.

The launch files remap nodes onto these names and the in-process runtime uses them as they
are, so a bag recorded in-process and a bag recorded on the robot have the same topics.
``qos`` is the profile key (``sim2real_safety.node_interface.QOS``) every node uses for the
topic, on ROS and in-process, and the bag records: ``sensor`` (best effort, keep last 5:
images and robot state; a best-effort subscriber also hears a reliable driver), ``command``
(reliable, keep last 1: only the newest command matters), ``latched`` (reliable + transient
local, state a late joiner must see) or ``default`` (reliable, volatile, keep last 10). A
contract test checks that every node creates exactly these.
"""
from __future__ import annotations

from dataclasses import dataclass

M = 'sim2real_msgs/msg/'


@dataclass(frozen=True)
class Topic:
    """One topic of the suite's graph."""

    name: str
    typename: str
    qos: str
    description: str


TOPICS = (
    Topic('/camera/image_raw', 'sensor_msgs/msg/Image', 'sensor',
          'frames from the camera driver or the simulator (rgb8)'),
    Topic('/camera/image_processed', 'sensor_msgs/msg/Image', 'sensor',
          'frames cropped, resized and colour-ordered as the model expects'),
    Topic('/camera/health', M + 'CameraHealth', 'default', 'frame age, rate, frozen score'),
    Topic('/policy/action_chunk', M + 'ActionChunk', 'default',
          'predicted actions, stamped with their observation time'),
    Topic('/policy/health', M + 'PolicyHealth', 'default', 'inference latency and errors'),
    Topic('/robot/state', M + 'RobotState', 'sensor',
          'measured end-effector pose, gripper width and effort'),
    Topic('/robot/joint_states', 'sensor_msgs/msg/JointState', 'sensor',
          'joint positions and velocities for limit monitoring'),
    Topic('/control/proposed_command', M + 'CartesianCommand', 'command',
          '100 Hz controller output, before the safety filter'),
    Topic('/control/diagnostics', M + 'ControlDiagnostics', 'default',
          'per-tick period, jitter, chunk age, latency, fallback in use'),
    Topic('/safety/command', M + 'CartesianCommand', 'command',
          'the only command that reaches the driver or the simulator'),
    Topic('/safety/status', M + 'SafetyStatus', 'latched', 'verdict and violated constraints'),
    Topic('/supervisor/state', M + 'SupervisorState', 'latched',
          'degraded mode; doubles as the supervisor heartbeat'),
    Topic('/episode/result', M + 'GraspResult', 'default', 'outcome of each grasp episode'),
    Topic('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', 'default',
          'metrics and anomaly checks of the logger'),
    Topic('/safety/trigger_stop_topic', 'std_msgs/msg/String', 'default',
          'a software-stop request on a topic (a button driver); the data is the reason'),
    Topic('/clock', 'rosgraph_msgs/msg/Clock', 'default',
          'simulated time from sim_robot_node (use_sim_time)'),
    Topic('/sim/episode_result', M + 'GraspResult', 'default',
          "during collection: the simulator's own verdict, which only marks its reset"),
    # standard driver interfaces (driver_relay_node; the stand-in driver serves them)
    Topic('/arm/target_pose', 'geometry_msgs/msg/PoseStamped', 'command',
          "the arm's Cartesian target (a Cartesian controller, MoveIt Servo pose tracking)"),
    Topic('/servo_node/delta_twist_cmds', 'geometry_msgs/msg/TwistStamped', 'command',
          "the arm's velocity for MoveIt Servo (relay arm_output: twist)"),
    Topic('/arm/ee_pose', 'geometry_msgs/msg/PoseStamped', 'sensor',
          "the arm driver's measured end-effector pose"),
    # the Gazebo world (gazebo.launch.py: ros_gz_bridge <-> gz_driver_node, gz_episode_node)
    Topic('/tf_static', 'tf2_msgs/msg/TFMessage', 'latched',
          "camera_node: the commissioned camera's pose (base_frame -> camera_frame) from "
          'the cell file'),
    Topic('/camera/camera_info', 'sensor_msgs/msg/CameraInfo', 'sensor',
          "the camera driver's intrinsics (Gazebo's camera: K from its field of view)"),
    Topic('/gz/joint_states', 'sensor_msgs/msg/JointState', 'sensor',
          "the Gazebo robot's joints as offsets from HOME (gz_driver_node reads them)"),
    Topic('/gz/object_pose', 'geometry_msgs/msg/PoseStamped', 'sensor',
          "the Gazebo object's pose (gz_episode_node judges the grasp from it)"),
    # commissioning a cell (commission.launch.py, `sim2real calibrate-cell`)
    Topic('/commissioning/progress', 'std_msgs/msg/String', 'latched',
          "the commissioning procedure's step, pose count and residuals as it runs"),
    # data collection (collect.launch.py, `sim2real collect`)
    Topic('/teleop/cmd_vel', 'geometry_msgs/msg/Twist', 'default',
          "the operator's velocity (a spacemouse or joystick driver)"),
    Topic('/teleop/joy', 'sensor_msgs/msg/Joy', 'default',
          "the operator's device buttons (gripper) and, for gamepads, axes"),
    Topic('/collect/intervention', 'std_msgs/msg/Bool', 'default',
          'true: a human takes control from the policy; false: hands it back'),
    Topic('/collect/proposed_command', M + 'CartesianCommand', 'command',
          "the policy's or the human's proposal, to the safety node"),
    Topic('/collect/events', M + 'EpisodeEvent', 'default',
          'episode boundaries, interventions, grasp attempts and operator labels'),
)

BY_NAME = {topic.name: topic for topic in TOPICS}

# Services: name -> type (sim2real_msgs/srv/...).
SERVICES = {
    '/safety/trigger_stop': 'sim2real_msgs/srv/TriggerSoftwareStop',
    '/safety/reset_stop': 'sim2real_msgs/srv/ResetSoftwareStop',
    '/supervisor/acknowledge': 'sim2real_msgs/srv/AcknowledgeHuman',
    '/supervisor/commission': 'sim2real_msgs/srv/Commission',
    '/collect/label': 'sim2real_msgs/srv/LabelEpisode',
    '/collect/start_episode': 'std_srvs/srv/Trigger',
    '/collect/end_episode': 'std_srvs/srv/Trigger',
}
# Actions (ROS 2 only): name -> type.
ACTIONS = {
    '/gripper_controller/gripper_cmd': 'control_msgs/action/GripperCommand',
}


def qos_map() -> dict[str, str]:
    """``{topic: qos profile key}`` for the bag recorder."""
    return {topic.name: topic.qos for topic in TOPICS}
