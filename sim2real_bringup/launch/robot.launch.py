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
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration

from sim2real_bringup.launch_actions import suite_node
from sim2real_bringup.launch_graph import (
    CAMERA,
    CELL_FILE_NODES,
    recorded_topics,
    RELAY,
    STANDIN_DRIVER,
    SUITE,
)


def generate_launch_description():
    joint_topic = LaunchConfiguration('joint_states_topic')
    driver = {  # the standard driver interfaces, as the robot's drivers name them
        'arm_target': LaunchConfiguration('arm_target_topic'),
        'arm_twist': LaunchConfiguration('arm_twist_topic'),
        'ee_pose': LaunchConfiguration('ee_pose_topic'),
        'joint_states': joint_topic,
        'gripper_action': LaunchConfiguration('gripper_action'),
    }
    overrides = {
        'safety_node': (('joint_states', joint_topic),),
        'camera_node': (('image_raw', LaunchConfiguration('image_topic')),),
    }
    nodes = []
    for spec in SUITE:
        extra = {}
        if spec is CAMERA:
            extra['source'] = LaunchConfiguration('camera_source')
        if spec.executable in ('policy_node', 'camera_node'):
            extra['model_path'] = LaunchConfiguration('model_path')
        if spec in CELL_FILE_NODES:
            extra['calibration_file'] = LaunchConfiguration('calibration_file')
            extra['cell_name'] = LaunchConfiguration('cell_name')
        nodes.append(suite_node(spec, overrides.get(spec.executable, ()), **extra))
    relay = suite_node(RELAY, tuple(driver.items()), IfCondition(LaunchConfiguration('relay')),
                       arm_output=LaunchConfiguration('arm_output'),
                       pose_source=LaunchConfiguration('pose_source'),
                       tool_frame=LaunchConfiguration('tool_frame'))
    standin = suite_node(STANDIN_DRIVER, tuple(
        (name, value) for name, value in driver.items() if name != 'arm_twist'),
        IfCondition(LaunchConfiguration('standin_driver')))
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '--max-bag-duration', '600',
             '-o', LaunchConfiguration('bag'), *recorded_topics()],
        output='screen', condition=IfCondition(LaunchConfiguration('record')))
    return LaunchDescription([
        DeclareLaunchArgument('camera_source', default_value='topic',
                              description='"topic" (a driver on image_topic) or an OpenCV '
                                          'source: device index, file, URL, GStreamer'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description="the camera driver's sensor_msgs/Image topic"),
        DeclareLaunchArgument('relay', default_value='true',
                              description='true: drivers with standard interfaces (the '
                                          'relay); false: drivers speaking sim2real_msgs'),
        DeclareLaunchArgument('arm_output', default_value='pose',
                              description='pose (PoseStamped target) or twist (MoveIt Servo)'),
        DeclareLaunchArgument('pose_source', default_value='topic',
                              description='the end-effector pose: topic (ee_pose_topic, a '
                                          'PoseStamped) or tf (tf2: base frame <- tool_frame)'),
        DeclareLaunchArgument('tool_frame', default_value='tool0',
                              description="the driver's end-effector frame on tf "
                                          '(pose_source:=tf)'),
        DeclareLaunchArgument('arm_target_topic', default_value='/arm/target_pose',
                              description="the arm controller's PoseStamped target topic"),
        DeclareLaunchArgument('arm_twist_topic', default_value='/servo_node/delta_twist_cmds',
                              description="MoveIt Servo's TwistStamped topic"),
        DeclareLaunchArgument('ee_pose_topic', default_value='/arm/ee_pose',
                              description="the arm driver's end-effector PoseStamped topic"),
        DeclareLaunchArgument('joint_states_topic', default_value='/robot/joint_states',
                              description="the drivers' sensor_msgs/JointState (with efforts)"),
        DeclareLaunchArgument('gripper_action', default_value='/gripper_controller/gripper_cmd',
                              description="the gripper's control_msgs/GripperCommand action"),
        DeclareLaunchArgument('standin_driver', default_value='false',
                              description='true: the MuJoCo robot behind the standard driver '
                                          'interfaces (no hardware)'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='ONNX policy ("" = the bundled policy)'),
        DeclareLaunchArgument('calibration_file', default_value='',
                              description='the cell file from commissioning (camera for the '
                                          'policy, actuation delay for the controller, table '
                                          'for the safety node); the keypoint policy needs '
                                          'it (with standin_driver: config/'
                                          'cell_calibration_sim.yaml)'),
        DeclareLaunchArgument('cell_name', default_value='',
                              description="this cell's name: a calibration_file written for "
                                          'another cell is refused ("" = accept any)'),
        DeclareLaunchArgument('record', default_value='true',
                              description='record every suite topic with rosbag2 (MCAP)'),
        DeclareLaunchArgument('bag', default_value='sim2real_run',
                              description='rosbag2 output folder (must not exist)'),
        *nodes, relay, standin, record,
    ])
