r"""Commission a cell: camera, table and actuation delay, written to the cell file.

The arm's and gripper's drivers are the robot's, started separately (as for robot.launch.py,
with the same driver arguments). Clear the table in front of the workspace first: the closed
gripper touches it off at x 0.36 m, y 0 and then visits 17 poses above and beside the
objects' region (about a minute).

  ros2 launch sim2real_bringup commission.launch.py output_file:=cells/bench-2.yaml \\
      cell:=bench-2 operator:=ana arm_target_topic:=/cartesian_controller/target_pose ...
  ros2 launch sim2real_bringup commission.launch.py output_file:=/tmp/c.yaml cell:=sim \\
      operator:=ana standin_driver:=true          # no hardware: MuJoCo behind the interfaces

``operator:=NAME`` asks the supervisor for the commissioning mode on that operator's behalf
once the graph is up; without it, the node waits for
``ros2 service call /supervisor/commission sim2real_msgs/srv/Commission
"{begin: true, operator_name: NAME, reason: WHY}"``. Progress: ``ros2 topic echo
/commissioning/progress``. Then ``robot.launch.py calibration_file:=FILE cell_name:=CELL``.
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
from sim2real_bringup.launch_graph import CAMERA, COMMISSION, COMMISSIONING, recorded_topics


def generate_launch_description():
    drivers, overrides = driver_nodes()
    nodes = []
    for spec in COMMISSION:
        extra = {}
        if spec is CAMERA:
            extra = {'source': LaunchConfiguration('camera_source'),
                     'model_path': LaunchConfiguration('model_path')}
        if spec is COMMISSIONING:
            extra = {name: LaunchConfiguration(argument) for name, argument in (
                ('output_file', 'output_file'), ('cell_name', 'cell'),
                ('operator_name', 'operator'), ('replace', 'replace'),
                ('robot_name', 'robot_name'), ('model_path', 'model_path'))}
        nodes.append(suite_node(spec, overrides.get(spec.executable, ()), **extra))
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '-o', LaunchConfiguration('bag'),
             *recorded_topics()],
        output='screen', condition=IfCondition(LaunchConfiguration('record')))
    return LaunchDescription([
        *launch_arguments(DRIVER_ARGUMENTS),
        *launch_arguments((
            ('output_file', '', 'the cell file to write (required)'),
            ('cell', '', "the cell's name in the file (required; robot.launch.py cell_name)"),
            ('operator', '', 'ask for the commissioning mode on behalf of this operator ("" '
             '= call /supervisor/commission yourself)'),
            ('replace', 'false', 'replace an existing output_file (the old one is kept '
             'beside it)'),
            ('robot_name', '', 'the robot, for the provenance in the file'),
            ('model_path', '', 'keypoint policy whose network finds the fingertips ("" = '
             'the bundled one)'),
            ('record', 'false', 'record every suite topic with rosbag2 (MCAP)'),
            ('bag', 'sim2real_commissioning', 'rosbag2 output folder (must not exist)'),
        )),
        *nodes, *drivers, record,
    ])
