"""The suite's node graph for the launch files, as plain data (no launch imports here).

Each entry: package, executable, the config file holding its ``ros__parameters`` and the
remappings of its relative topic and service names onto the suite graph of ``topics.py``.
The launch files turn these into ``launch_ros.actions.Node`` actions, so the graph is written
once and tested without ROS.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph."""

    package: str
    executable: str
    config: str
    remappings: tuple = ()
    parameters: dict = field(default_factory=dict)


CAMERA = NodeSpec('sim2real_policy', 'camera_node', 'camera.yaml', (
    ('image_raw', '/camera/image_raw'), ('image_processed', '/camera/image_processed'),
    ('health', '/camera/health'), ('tf_static', '/tf_static')))
POLICY = NodeSpec('sim2real_policy', 'policy_node', 'policy.yaml', (
    ('image_processed', '/camera/image_processed'), ('robot_state', '/robot/state'),
    ('action_chunk', '/policy/action_chunk'), ('health', '/policy/health')))
CONTROL = NodeSpec('sim2real_policy', 'control_node', 'control.yaml', (
    ('action_chunk', '/policy/action_chunk'), ('supervisor_state', '/supervisor/state'),
    ('robot_state', '/robot/state'), ('proposed_command', '/control/proposed_command'),
    ('diagnostics', '/control/diagnostics')))
SAFETY = NodeSpec('sim2real_safety', 'safety_node', 'safety.yaml', (
    ('proposed_command', '/control/proposed_command'), ('robot_state', '/robot/state'),
    ('joint_states', '/robot/joint_states'), ('supervisor_state', '/supervisor/state'),
    ('safe_command', '/safety/command'), ('status', '/safety/status'),
    ('trigger_stop_topic', '/safety/trigger_stop_topic'),
    ('trigger_stop', '/safety/trigger_stop'), ('reset_stop', '/safety/reset_stop')))
SUPERVISOR = NodeSpec('sim2real_safety', 'supervisor_node', 'supervisor.yaml', (
    ('camera_health', '/camera/health'), ('policy_health', '/policy/health'),
    ('robot_state', '/robot/state'), ('safe_command', '/safety/command'),
    ('control_diagnostics', '/control/diagnostics'), ('safety_status', '/safety/status'),
    ('grasp_result', '/episode/result'), ('state', '/supervisor/state'),
    ('acknowledge', '/supervisor/acknowledge'), ('commission', '/supervisor/commission')))
LOGGER = NodeSpec('sim2real_bringup', 'logger_node', 'logger.yaml', (
    ('action_chunk', '/policy/action_chunk'), ('control_diagnostics', '/control/diagnostics'),
    ('safe_command', '/safety/command'), ('supervisor_state', '/supervisor/state'),
    ('grasp_result', '/episode/result')))
SIM_ROBOT = NodeSpec('sim2real_policy', 'sim_robot_node', 'sim.yaml', (
    ('command', '/safety/command'), ('robot_state', '/robot/state'),
    ('joint_states', '/robot/joint_states'), ('image_raw', '/camera/image_raw'),
    ('grasp_result', '/episode/result')))

# Between the safety node and standard drivers (robot.launch.py); the stand-in driver serves
# those standard interfaces from the MuJoCo robot (tests, demos without hardware).
RELAY = NodeSpec('sim2real_bringup', 'driver_relay_node', 'relay.yaml', (
    ('command', '/safety/command'), ('ee_pose', '/arm/ee_pose'),
    ('joint_states', '/robot/joint_states'), ('arm_target', '/arm/target_pose'),
    ('arm_twist', '/servo_node/delta_twist_cmds'), ('robot_state', '/robot/state'),
    ('gripper_action', '/gripper_controller/gripper_cmd')))
STANDIN_DRIVER = NodeSpec('sim2real_policy', 'standin_driver_node', 'standin_driver.yaml', (
    ('arm_target', '/arm/target_pose'), ('ee_pose', '/arm/ee_pose'),
    ('joint_states', '/robot/joint_states'), ('image_raw', '/camera/image_raw'),
    ('gripper_action', '/gripper_controller/gripper_cmd'), ('grasp_result', '/episode/result')))
# The Gazebo world's robot behind the same standard interfaces (gazebo.launch.py), and its
# episodes: the verdict on /episode/result, as sim_robot_node's.
GZ_DRIVER = NodeSpec('sim2real_policy', 'gz_driver_node', 'gazebo.yaml', (
    ('arm_target', '/arm/target_pose'), ('ee_pose', '/arm/ee_pose'),
    ('joint_states', '/robot/joint_states'), ('gz_joint_states', '/gz/joint_states'),
    ('gripper_action', '/gripper_controller/gripper_cmd')))
GZ_EPISODE = NodeSpec('sim2real_policy', 'gz_episode_node', 'gazebo.yaml', (
    ('object_pose', '/gz/object_pose'), ('robot_state', '/robot/state'),
    ('grasp_result', '/episode/result')))

CALIBRATION = NodeSpec('sim2real_bringup', 'calibration_node', 'calibration.yaml', (
    ('robot_state', '/robot/state'), ('supervisor_state', '/supervisor/state'),
    ('proposed_command', '/control/proposed_command'),
    ('diagnostics', '/control/diagnostics')))

# Commissioning a cell (commission.launch.py, `sim2real calibrate-cell`): the commissioning
# node stands in for the policy and the controller, through the safety node.
COMMISSIONING = NodeSpec('sim2real_bringup', 'commissioning_node', 'commissioning.yaml', (
    ('robot_state', '/robot/state'), ('image_processed', '/camera/image_processed'),
    ('supervisor_state', '/supervisor/state'), ('proposed_command', '/control/proposed_command'),
    ('diagnostics', '/control/diagnostics'), ('commission', '/supervisor/commission'),
    ('progress', '/commissioning/progress')))

COLLECT = NodeSpec('sim2real_bringup', 'collect_node', 'collect.yaml', (
    ('policy_command', '/control/proposed_command'), ('cmd_vel', '/teleop/cmd_vel'),
    ('joy', '/teleop/joy'), ('intervention', '/collect/intervention'),
    ('robot_state', '/robot/state'), ('safe_command', '/safety/command'),
    ('episode_done', '/sim/episode_result'), ('proposed_command', '/collect/proposed_command'),
    ('events', '/collect/events'), ('grasp_result', '/episode/result'),
    ('label', '/collect/label'), ('start_episode', '/collect/start_episode'),
    ('end_episode', '/collect/end_episode')))

# Collection (collect.launch.py and `sim2real collect`): collect_node between the controller
# and the safety node; the simulator's own episode verdict only marks the reset.
COLLECT_REMAPS = {
    'safety_node': (('proposed_command', '/collect/proposed_command'),),
    'sim_robot_node': (('grasp_result', '/sim/episode_result'),),
}

# The suite's own nodes; the robot side (drivers, or sim_robot_node) is added per launch file.
SUITE = (CAMERA, POLICY, CONTROL, SAFETY, SUPERVISOR, LOGGER)
# The nodes that load the cell file (calibration_file, cell_name): the camera's transform,
# the camera, the delay, the table.
CELL_FILE_NODES = (CAMERA, POLICY, CONTROL, SAFETY)
# What nodes run during a replay: the bag provides camera, robot and policy outputs.
REPLAY = (CONTROL, SAFETY, SUPERVISOR, LOGGER)
# A calibration run: the calibration node stands in for camera, policy and control.
CALIBRATE = (CALIBRATION, SAFETY, SUPERVISOR)
# Commissioning: the camera's frames, the commissioning node's motions through the safety node.
COMMISSION = (CAMERA, COMMISSIONING, SAFETY, SUPERVISOR)
# What a calibration run records for `sim2real sysid`.
CALIBRATION_TOPICS = ('/safety/command', '/robot/joint_states', '/robot/state',
                      '/control/proposed_command', '/safety/status', '/supervisor/state')


def recorded_topics() -> list[str]:
    """Every suite topic, for `ros2 bag record`."""
    from sim2real_bringup.topics import TOPICS
    return [topic.name for topic in TOPICS] + ['/safety/trigger_stop_topic']
