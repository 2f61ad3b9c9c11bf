"""Every import of the package is declared for a robot's ROS install: a
rosdep key in package.xml, or, for the few Python packages that have no
rosdep key, a pip requirement in setup.py that the README's robot recipe
installs. Read from the source (ast), not from what happens to be installed."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: import name -> rosdep key (ros/rosdistro rosdep/base.yaml and python.yaml,
#: or a ROS package name)
ROSDEP_KEYS = {
    'rclpy': 'rclpy', 'rcl_interfaces': 'rcl_interfaces',
    'builtin_interfaces': 'builtin_interfaces', 'std_msgs': 'std_msgs',
    'sensor_msgs': 'sensor_msgs', 'geometry_msgs': 'geometry_msgs', 'nav_msgs': 'nav_msgs',
    'visualization_msgs': 'visualization_msgs', 'diagnostic_msgs': 'diagnostic_msgs',
    'tf2_msgs': 'tf2_msgs', 'std_srvs': 'std_srvs', 'audio_common_msgs': 'audio_common_msgs',
    'ament_index_python': 'ament_index_python', 'launch': 'launch', 'launch_ros': 'launch_ros',
    'numpy': 'python3-numpy', 'scipy': 'python3-scipy', 'yaml': 'python3-yaml',
    'transforms3d': 'python3-transforms3d', 'cv2': 'python3-opencv',
    'onnxruntime': 'python3-onnxruntime-pip', 'rosbags': 'python3-rosbags-pip',
    'soundfile': 'python3-soundfile', 'sounddevice': 'python3-sounddevice-pip',
    'pybullet': 'python3-pybullet-pip', 'PIL': 'python3-pil', 'matplotlib': 'python3-matplotlib',
    'torch': 'python3-torch',
}

#: import name -> PyPI name, for packages with no rosdep key
PIP_ONLY = {'pyroomacoustics': 'pyroomacoustics', 'shroom': 'pyshroom', 'sofar': 'sofar',
            'onnx': 'onnx', 'safetensors': 'safetensors'}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files importing it, over the package and the launch files."""
    files = list((ROOT / 'av_perception').rglob('*.py')) + list((ROOT / 'launch').glob('*.py'))
    out: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split('.')[0]
                if top not in sys.stdlib_module_names and top not in ('av_perception',
                                                                      '__future__'):
                    out.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return out


def _package_xml_keys() -> set[str]:
    root = ET.parse(ROOT / 'package.xml').getroot()
    tags = ('depend', 'exec_depend', 'build_depend', 'buildtool_depend', 'test_depend')
    return {el.text.strip() for tag in tags for el in root.findall(tag)}


def test_every_import_is_declared():
    imports = _third_party_imports()
    unknown = sorted(set(imports) - set(ROSDEP_KEYS) - set(PIP_ONLY))
    assert not unknown, f'imports with no rosdep key or pip entry in this test: ' \
        f'{ {u: sorted(imports[u]) for u in unknown} }'
    keys = _package_xml_keys()
    missing = sorted(ROSDEP_KEYS[m] for m in imports if m in ROSDEP_KEYS
                     and ROSDEP_KEYS[m] not in keys)
    assert not missing, f'package.xml does not declare: {missing}'
    setup = (ROOT / 'setup.py').read_text()
    for module in set(imports) & set(PIP_ONLY):
        assert re.search(rf"'{PIP_ONLY[module]}[<>=!~]", setup), \
            f'{module}: no rosdep key and no requirement in setup.py'


def test_the_robot_recipe_installs_the_runtime_packages_without_a_rosdep_key():
    """pyroomacoustics (classic sound direction) is needed by the nodes; the
    README's robot section installs it with pip, pinned."""
    readme = (ROOT / 'README.md').read_text()
    pinned = re.search(r'^pyroomacoustics==(\S+)$',
                       (ROOT / 'requirements' / 'constraints.txt').read_text(), re.M)
    assert pinned
    assert f'pyroomacoustics=={pinned.group(1)}' in readme


def test_package_xml_declares_nothing_unused():
    used = {ROSDEP_KEYS[m] for m in _third_party_imports() if m in ROSDEP_KEYS}
    build = {'ament_cmake', 'ament_cmake_python', 'rosidl_default_generators',
             'rosidl_default_runtime', 'portaudio19-dev',  # the library under sounddevice
             'python3-pytest', 'python3-hypothesis'}
    assert _package_xml_keys() - used - build == set()


def test_package_xml_is_one_ament_cmake_package_with_its_messages():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'av_perception'
    assert root.find('export/build_type').text == 'ament_cmake'
    assert root.findtext('member_of_group') == 'rosidl_interface_packages'
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    for msg in sorted((ROOT / 'msg').glob('*.msg')):
        assert f'msg/{msg.name}' in cmake, f'{msg.name} is not generated'
    assert not (ROOT / 'interfaces' / 'av_perception_msgs').exists()
