"""ament_python build of sim2real_safety (also installable with pip for the ROS-free runtime)."""
from setuptools import find_packages, setup

package_name = 'sim2real_safety'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
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
    description='Safety filter, software stop, command gate and degraded-mode supervisor.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'safety_node = sim2real_safety.nodes.safety_node:main',
            'supervisor_node = sim2real_safety.nodes.supervisor_node:main',
        ],
    },
)
