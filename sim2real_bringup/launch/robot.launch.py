r"""The real robot: camera, policy, control, safety, supervisor, logger, the driver relay, rosbag2.

The arm's and gripper's drivers are the robot's, started separately. The driver relay turns
the safe command into what they take -- a geometry_msgs/PoseStamped target (Cartesian
controllers, MoveIt Servo pose tracking) or a TwistStamped for MoveIt Servo
(``arm_output:=twist``), and control_msgs/action/GripperCommand goals (ros2_control's gripper
action controller, the Robotiq 2F-85 driver) -- and builds the suite's RobotState from the
arm's end-effector pose and the gripper joint of its JointState.

  ros2 launch sim2real_bringup robot.launch.py camera_source:=0 \\
      arm_target_topic:=/cartesian_controller/target_pose ee_pose_topic:=/arm/ee_pose \\
      joint_states_topic:=/joint_states gripper_action:=/robotiq_gripper_controller/gripper_cmd
  ros2 launch sim2real_bringup robot.launch.py standin_driver:=true   # no hardware: MuJoCo

``relay:=false`` for drivers that take sim2real_msgs/CartesianCommand on /safety/command and
publish RobotState on /robot/state themselves.
"""
from launch import LaunchDescription
from launch.actions import ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration

from sim2real_bringup.launch_actions import (
    DRIVER_ARGUMENTS,
    driver_nodes,
    launch_arguments,
    suite_node,
)
from sim2real_bringup.launch_graph import CAMERA, CELL_FILE_NODES, recorded_topics, SUITE


def generate_launch_description():
    drivers, overrides = driver_nodes()
    nodes = []
    for spec in SUITE:
        extra = {}
        if spec is CAMERA:
            extra['source'] = LaunchConfiguration('camera_source')
        if spec.executable in ('policy_node', 'camera_node'):
            extra['model_path'] = LaunchConfiguration('model_path')
        if spec.executable == 'policy_node':
            extra['verify_calibration'] = LaunchConfiguration('verify_calibration')
        if spec in CELL_FILE_NODES:
            extra['calibration_file'] = LaunchConfiguration('calibration_file')
            extra['cell_name'] = LaunchConfiguration('cell_name')
        nodes.append(suite_node(spec, overrides.get(spec.executable, ()), **extra))
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '--max-bag-duration', '600',
             '-o', LaunchConfiguration('bag'), *recorded_topics()],
        output='screen', condition=IfCondition(LaunchConfiguration('record')))
    return LaunchDescription([
        *launch_arguments(DRIVER_ARGUMENTS),
        *launch_arguments((
            ('model_path', '', 'ONNX policy ("" = the bundled policy)'),
            ('calibration_file', '', 'the cell file from commissioning (commission.launch.py):'
             ' camera for the policy, actuation delay for the controller, table for the '
             'safety node; the keypoint policy needs it (with standin_driver: '
             'config/cell_calibration_sim.yaml)'),
            ('cell_name', '', "this cell's name: a calibration_file written for another cell "
             'is refused ("" = accept any)'),
            ('verify_calibration', 'true', 'check the cell file against the camera (the '
             'fingertips where it puts them) before the first grasp and all along; a camera '
             'moved since commissioning stops autonomy (HUMAN_REQUIRED, camera_calibration)'),
            ('record', 'true', 'record every suite topic with rosbag2 (MCAP)'),
            ('bag', 'sim2real_run', 'rosbag2 output folder (must not exist)'),
        )),
        *nodes, *drivers, record,
    ])
