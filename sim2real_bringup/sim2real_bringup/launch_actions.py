"""The one way the launch files turn the launch graph (``launch_graph.py``) into nodes.

Imports launch_ros, so only launch files import it (the launch graph itself stays plain data,
tested without ROS).
"""
from __future__ import annotations


def suite_node(spec, remap_override=(), condition=None, **parameters):
    """A ``launch_ros`` Node for ``spec``.

    Its config file with ``parameters`` over it, its launch-graph remappings with
    ``remap_override`` over them.
    """
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.substitutions import FindPackageShare

    config = PathJoinSubstitution([FindPackageShare('sim2real_bringup'), 'config', spec.config])
    remappings = dict(spec.remappings)
    remappings.update(dict(remap_override))
    return Node(package=spec.package, executable=spec.executable, name=spec.executable,
                output='screen', parameters=[config, parameters],
                remappings=list(remappings.items()), condition=condition)


# The robot's drivers as robot.launch.py and commission.launch.py meet them: launch argument
# name, default, description. The driver relay turns the safe command into their inputs.
DRIVER_ARGUMENTS = (
    ('camera_source', 'topic', '"topic" (a driver on image_topic) or an OpenCV source: '
     'device index, file, URL, GStreamer'),
    ('image_topic', '/camera/image_raw', "the camera driver's sensor_msgs/Image topic"),
    ('relay', 'true', 'true: drivers with standard interfaces (the relay); false: drivers '
     'speaking sim2real_msgs'),
    ('arm_output', 'pose', 'pose (PoseStamped target) or twist (MoveIt Servo)'),
    ('pose_source', 'topic', 'the end-effector pose: topic (ee_pose_topic, a PoseStamped) or '
     'tf (tf2: base frame <- tool_frame)'),
    ('tool_frame', 'tool0', "the driver's end-effector frame on tf (pose_source:=tf)"),
    ('arm_target_topic', '/arm/target_pose', "the arm controller's PoseStamped target topic"),
    ('arm_twist_topic', '/servo_node/delta_twist_cmds', "MoveIt Servo's TwistStamped topic"),
    ('ee_pose_topic', '/arm/ee_pose', "the arm driver's end-effector PoseStamped topic"),
    ('joint_states_topic', '/robot/joint_states',
     "the drivers' sensor_msgs/JointState (with efforts)"),
    ('gripper_action', '/gripper_controller/gripper_cmd',
     "the gripper's control_msgs/GripperCommand action"),
    ('standin_driver', 'false', 'true: the MuJoCo robot behind the standard driver interfaces '
     '(no hardware)'),
    ('standin_randomization_file', '', "the stand-in's randomization ranges file (\"\" = the "
     'nominal scene; config/randomization.yaml for a randomized cell)'),
    ('standin_randomization', 'none', 'its profile (none, light, heavy)'),
    ('standin_seed', '0', "the stand-in scene's seed"),
    ('standin_episode_timeout', '0.0', "s: the stand-in's episodes (0.0: one long episode, as "
     "a robot's; > 0: the next object after a grasp held or this long, and the verdict on "
     '/episode/result)'),
)


def launch_arguments(arguments) -> list:
    """``DeclareLaunchArgument`` s from (name, default, description) rows."""
    from launch.actions import DeclareLaunchArgument
    return [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, default, text in arguments]


def driver_nodes() -> tuple[list, dict]:
    """The driver relay and the stand-in driver, and the remappings the suite's nodes need.

    Returns ``([relay, standin], overrides)``: ``overrides`` maps a node's executable to the
    remappings that point it at the drivers' topics (joint states, camera image).
    """
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration

    from sim2real_bringup.launch_graph import RELAY, STANDIN_DRIVER

    joint_topic = LaunchConfiguration('joint_states_topic')
    driver = {  # the standard driver interfaces, as the robot's drivers name them
        'arm_target': LaunchConfiguration('arm_target_topic'),
        'arm_twist': LaunchConfiguration('arm_twist_topic'),
        'ee_pose': LaunchConfiguration('ee_pose_topic'),
        'joint_states': joint_topic,
        'gripper_action': LaunchConfiguration('gripper_action'),
    }
    relay = suite_node(RELAY, tuple(driver.items()), IfCondition(LaunchConfiguration('relay')),
                       arm_output=LaunchConfiguration('arm_output'),
                       pose_source=LaunchConfiguration('pose_source'),
                       tool_frame=LaunchConfiguration('tool_frame'))
    standin = suite_node(STANDIN_DRIVER, tuple(
        (name, value) for name, value in driver.items() if name != 'arm_twist'),
        IfCondition(LaunchConfiguration('standin_driver')),
        randomization_file=LaunchConfiguration('standin_randomization_file'),
        randomization=LaunchConfiguration('standin_randomization'),
        seed=LaunchConfiguration('standin_seed'),
        episode_timeout=LaunchConfiguration('standin_episode_timeout'))
    overrides = {
        'safety_node': (('joint_states', joint_topic),),
        'camera_node': (('image_raw', LaunchConfiguration('image_topic')),),
    }
    return [relay, standin], overrides
