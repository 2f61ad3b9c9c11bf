"""Launch the simulated robot and the whole av_perception graph on it, one
process per node: no hardware needed.

    ros2 launch av_perception sim.launch.py [namespace:=robot1]
        [params_file:=/path/to/sim.yaml] [perception:=true] [recorder:=true]
        [log_level:=info]

Nodes, by switchable group:

- always: ``sim_world`` (a held-out simulated room: camera, microphone array,
  binaural head, echoes, ground truth, odometry and the static frames) and
  ``audio_monitor``;
- ``perception``: ``sound_direction`` (4-mic array), a second
  ``sound_direction`` in the sub-namespace ``binaural`` (the binaural head),
  ``echo_depth``, ``rotation`` and ``av_heatmap``;
- ``recorder``: an MCAP bag of inputs, outputs and ground truth (on by default).

Namespaces and TF as in robot.launch.py. The simulator publishes in wall-clock
time, so there is no use_sim_time argument.

Without a ROS install, ``av-perception run config/sim.yaml`` starts the same
graph in one process (``av-perception demo`` also writes a report).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace, SetRemap

#: group (launch argument) -> its nodes as (executable, sub-namespace); None: always started
GROUPS = {
    None: (('sim_world', ''), ('audio_monitor', '')),
    'perception': (('sound_direction', ''), ('sound_direction', 'binaural'),
                   ('echo_depth', ''), ('rotation', ''), ('av_heatmap', '')),
    'recorder': (('recorder', ''),),
}
DEFAULTS = {'perception': 'true', 'recorder': 'true'}


def generate_launch_description():
    share = get_package_share_directory('av_perception')
    params = LaunchConfiguration('params_file')
    log_level = LaunchConfiguration('log_level')
    args = [
        DeclareLaunchArgument('namespace', default_value='',
                              description='the robot\'s namespace (empty: the root namespace)'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'sim.yaml'),
                              description='ROS 2 params file of the nodes'),
        DeclareLaunchArgument('log_level', default_value='info', description='node log level'),
    ] + [DeclareLaunchArgument(group, default_value=DEFAULTS[group],
                               description='start ' + ', '.join(
                                   f'{ns}/{exe}' if ns else exe for exe, ns in GROUPS[group]))
         for group in DEFAULTS]
    groups = []
    for group, entries in GROUPS.items():
        nodes = [Node(package='av_perception', executable=exe, name=exe, namespace=ns or None,
                      parameters=[params], arguments=['--ros-args', '--log-level', log_level],
                      output='screen')
                 for exe, ns in entries]
        groups.append(GroupAction(nodes, condition=IfCondition(LaunchConfiguration(group))
                                  if group else None))
    robot = GroupAction([
        PushRosNamespace(LaunchConfiguration('namespace')),
        SetRemap(src='/tf', dst='tf'),
        SetRemap(src='/tf_static', dst='tf_static'),
        *groups,
    ])
    return LaunchDescription([*args, robot])
