"""ament_python build of sim2real_bringup (also installable with pip for the ROS-free runtime).

Besides the Python package it installs the launch files and the suite's shared parameter
files from the repository's top-level ``config/`` into ``share/sim2real_bringup/config``,
where the launch files and the in-process runtime find them.
"""
from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'sim2real_bringup'
here = os.path.dirname(os.path.abspath(__file__))
config_dir = os.path.join(here, '..', 'config')
if not os.path.isdir(config_dir):
    raise SystemExit(
        f'sim2real_bringup: the suite config folder {os.path.normpath(config_dir)} is missing; '
        'clone the whole sim2real repository into your workspace src/, not single packages.')


def rel(paths):
    """Paths relative to setup.py, sorted; dangling links left out."""
    # setuptools wants data_files sources relative to setup.py. Under --symlink-install the
    # config folder seen from here is colcon's folder of links, which keeps a dangling link for
    # every file an earlier checkout had: installing one would fail the build.
    return sorted(os.path.relpath(p, here) for p in paths if os.path.exists(p))


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', rel(glob(os.path.join(here, 'launch', '*.py')))),
        ('share/' + package_name + '/config', rel(glob(os.path.join(config_dir, '*.yaml'))
                                                  + glob(os.path.join(config_dir, '*.json')))),
    ],
    install_requires=['setuptools'],
    # colcon runs a package's tests with pytest only when pytest is its test dependency here
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='sim2real maintainers',
    maintainer_email='sim2real@example.com',
    description='Launch files, logger, in-process runtime, replay, reports and the sim2real CLI.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'sim2real = sim2real_bringup.cli:main',
            'logger_node = sim2real_bringup.nodes.logger_node:main',
            'calibration_node = sim2real_bringup.nodes.calibration_node:main',
            'commissioning_node = sim2real_bringup.nodes.commissioning_node:main',
            'collect_node = sim2real_bringup.nodes.collect_node:main',
            'driver_relay_node = sim2real_bringup.nodes.driver_relay_node:main',
        ],
    },
)
