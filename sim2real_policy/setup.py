"""ament_python build of sim2real_policy (also installable with pip for the ROS-free runtime)."""
from setuptools import find_packages, setup

package_name = 'sim2real_policy'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['models/*.onnx', 'models/*.pt']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    # colcon runs a package's tests with pytest only when pytest is its test dependency here
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='sim2real maintainers',
    maintainer_email='sim2real@example.com',
    description=('Camera, inference, action chunking, 100 Hz control, MuJoCo sim '
                 'and sim-side tools.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'camera_node = sim2real_policy.nodes.camera_node:main',
            'policy_node = sim2real_policy.nodes.policy_node:main',
            'control_node = sim2real_policy.nodes.control_node:main',
            'sim_robot_node = sim2real_policy.nodes.sim_robot_node:main',
            'standin_driver_node = sim2real_policy.nodes.standin_driver_node:main',
            'gz_driver_node = sim2real_policy.nodes.gz_driver_node:main',
            'gz_episode_node = sim2real_policy.nodes.gz_episode_node:main',
        ],
    },
)
