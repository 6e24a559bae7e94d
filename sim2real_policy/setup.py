"""ament_python build of sim2real_policy (also installable with pip for the ROS-free runtime)."""
from setuptools import find_packages, setup

package_name = 'sim2real_policy'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='sim2real maintainers',
    maintainer_email='sim2real@example.com',
    description=('Camera, inference, action chunking, 100 Hz control, MuJoCo sim '
                 'and sim-side tools.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            # Node entry points are added with their nodes (see the README's node table).
        ],
    },
)
