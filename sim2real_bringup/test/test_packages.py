"""The four packages are laid out as colcon, ament and rosdep expect."""
import configparser
from pathlib import Path
import shutil
import subprocess
import sys
import warnings

from catkin_pkg.package import parse_package
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ['sim2real_msgs', 'sim2real_safety', 'sim2real_policy', 'sim2real_bringup']
PYTHON_PACKAGES = PACKAGES[1:]

# Dependency keys the packages may use, each a released ROS 2 package in Humble and Jazzy or a
# key of rosdistro's rosdep/base.yaml or python.yaml. A new key belongs here only after it was
# checked there (and `rosdep resolve` in test_rosdep_resolves_every_key checks it for real).
ROS_PACKAGES = {
    'ament_cmake', 'ament_lint_auto', 'ament_lint_common', 'builtin_interfaces', 'control_msgs',
    'diagnostic_msgs', 'geometry_msgs', 'launch', 'launch_ros', 'rclpy', 'ros2bag',
    'rosbag2_storage_mcap', 'rosgraph_msgs', 'rosidl_default_generators',
    'rcl_interfaces', 'rosidl_default_runtime', 'sensor_msgs', 'std_msgs', 'std_srvs',
    'tf2_ros_py', 'tf2_msgs',
}
ROSDEP_KEYS = {
    'python3-catkin-pkg', 'python3-hypothesis', 'python3-matplotlib', 'python3-numpy',
    'python3-opencv', 'python3-pytest', 'python3-scipy', 'python3-yaml',
}


def _parse(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        package = parse_package(ROOT / name / 'package.xml', warnings=(found := []))
    return package, found + [str(w.message) for w in caught]


@pytest.mark.parametrize('name', PACKAGES)
def test_package_xml_parses_without_warnings(name):
    package, found = _parse(name)
    assert found == []
    assert package.name == name
    assert package.package_format == 3
    package.validate()


@pytest.mark.parametrize('name', PACKAGES)
def test_every_dependency_is_a_known_key(name):
    package, _ = _parse(name)
    deps = (package.exec_depends + package.build_depends + package.buildtool_depends
            + package.test_depends + package.build_export_depends)
    unknown = sorted({d.name for d in deps} - ROS_PACKAGES - ROSDEP_KEYS - set(PACKAGES))
    assert unknown == [], f'{name}: keys not known to rosdep: {unknown}'


def test_msgs_package_is_a_rosidl_interface_package():
    package, _ = _parse('sim2real_msgs')
    assert 'rosidl_interface_packages' in [g.name for g in package.member_of_groups]
    assert {'ament_cmake', 'rosidl_default_generators'} <= {
        d.name for d in package.buildtool_depends}
    assert 'rosidl_default_runtime' in {d.name for d in package.exec_depends}
    cmake = (ROOT / 'sim2real_msgs' / 'CMakeLists.txt').read_text()
    assert 'rosidl_generate_interfaces(' in cmake
    assert 'ament_export_dependencies(rosidl_default_runtime)' in cmake


@pytest.mark.parametrize('name', PYTHON_PACKAGES)
def test_python_package_layout(name):
    pkg = ROOT / name
    package, _ = _parse(name)
    assert package.get_build_type() == 'ament_python'
    assert (pkg / 'resource' / name).is_file()
    assert (pkg / name / '__init__.py').is_file()
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(pkg / 'setup.cfg')
    # ros2 run looks for executables in lib/<package>.
    assert cfg['develop']['script_dir'] == f'$base/lib/{name}'
    assert cfg['install']['install_scripts'] == f'$base/lib/{name}'
    setup = (pkg / 'setup.py').read_text()
    assert "'share/ament_index/resource_index/packages'" in setup
    assert "['resource/' + package_name]" in setup


def test_cores_do_not_import_rclpy():
    leaks = []
    for name in PYTHON_PACKAGES:
        for path in (ROOT / name / name).rglob('*.py'):
            if 'nodes' in path.parts or path.name == 'launch_actions.py':
                continue  # the node layer, and the launch files' one helper
            for line in path.read_text().splitlines():
                if line.strip().startswith(('import rclpy', 'from rclpy', 'import launch',
                                            'from launch')):
                    leaks.append(f'{path.relative_to(ROOT)}: {line.strip()}')
    assert leaks == []


@pytest.mark.ros
def test_rosdep_resolves_every_key():
    if shutil.which('rosdep') is None:
        pytest.skip('rosdep is not installed here')
    probe = subprocess.run(['rosdep', 'resolve', 'python3-numpy'], capture_output=True,
                           text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f'rosdep has no database here (rosdep update?): {probe.stderr.strip()}')
    for key in sorted(ROSDEP_KEYS):
        result = subprocess.run(['rosdep', 'resolve', key], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, f'{key}: {result.stderr}'


def test_an_upgraded_symlink_workspace_installs_past_a_removed_config(tmp_path):
    # colcon --symlink-install stages the package as links in build/<name>/ and the top-level
    # config/ as build/config/, where a file removed from the source since the last build
    # stays as a dangling link (CI failed on one: config/gz_bridge.yaml).
    build = tmp_path / 'build'
    package = build / 'sim2real_bringup'
    package.mkdir(parents=True)
    for name in ('setup.py', 'package.xml', 'resource', 'launch', 'sim2real_bringup'):
        (package / name).symlink_to(ROOT / 'sim2real_bringup' / name)
    (build / 'config').mkdir()
    (build / 'config' / 'control.yaml').symlink_to(ROOT / 'config' / 'control.yaml')
    (build / 'config' / 'removed.yaml').symlink_to(tmp_path / 'gone' / 'removed.yaml')
    out = tmp_path / 'install'
    done = subprocess.run([sys.executable, 'setup.py', '-q', 'install_data', '-d', str(out)],
                          cwd=package, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    installed = sorted(p.name for p in (out / 'share/sim2real_bringup/config').iterdir())
    assert installed == ['control.yaml']


def test_the_config_digest_passes_over_a_dangling_link(tmp_path):
    from sim2real_bringup.config import config_digest
    shutil.copy(ROOT / 'config' / 'control.yaml', tmp_path / 'control.yaml')
    before = config_digest(tmp_path)
    (tmp_path / 'removed.yaml').symlink_to(tmp_path / 'gone.yaml')
    assert config_digest(tmp_path) == before
    (tmp_path / 'safety.yaml').write_text('safety_node: {}\n')
    assert config_digest(tmp_path) != before
