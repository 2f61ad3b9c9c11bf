"""Launch the robot's whole av_perception graph, one process per node.

    ros2 launch av_perception robot.launch.py [namespace:=robot1] [use_sim_time:=false]
        [params_file:=/path/to/robot.yaml] [capture:=true] [perception:=true]
        [recorder:=false] [log_level:=info]

Nodes, by switchable group:

- always: ``static_frames`` (the robot's fixed frames on /tf_static) and
  ``audio_monitor`` (microphone health in /diagnostics);
- ``capture``: ``audio_capture`` (the microphone array's sound card ->
  audio/raw) and ``chirp_emitter`` (the echo head: chirp out, audio/echo in);
  switch it off when a driver such as audio_common publishes the audio;
- ``perception``: ``sound_direction``, ``echo_depth``, ``rotation`` and
  ``av_heatmap`` (they need the camera driver's camera/image_raw and
  camera/camera_info);
- ``recorder``: an MCAP bag of the inputs and outputs (off by default).

Every node reads ``params_file`` (keys ``/**/<node>``, so one file serves a
robot in any namespace). Under ``namespace`` the topics are the robot's
(``/robot1/audio/raw``) and, as nav2's multi-robot bring-up does, /tf and
/tf_static are remapped to the robot's ``tf`` and ``tf_static``; frame names
stay unprefixed (REP 105).

Without a ROS install, ``av-perception run config/robot.yaml [--namespace robot1]``
starts the nodes of the same file in one process.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace, SetParameter, SetRemap

#: group (launch argument) -> its nodes (executable = node name); None: always started
GROUPS = {
    None: ('static_frames', 'audio_monitor'),
    'capture': ('audio_capture', 'chirp_emitter'),
    'perception': ('sound_direction', 'echo_depth', 'rotation', 'av_heatmap'),
    'recorder': ('recorder',),
}
DEFAULTS = {'capture': 'true', 'perception': 'true', 'recorder': 'false'}


def generate_launch_description():
    share = get_package_share_directory('av_perception')
    params = LaunchConfiguration('params_file')
    log_level = LaunchConfiguration('log_level')
    args = [
        DeclareLaunchArgument('namespace', default_value='',
                              description='the robot\'s namespace (empty: the root namespace)'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='take the time from /clock (a bag or a simulator)'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'robot.yaml'),
                              description='ROS 2 params file of the nodes'),
        DeclareLaunchArgument('log_level', default_value='info', description='node log level'),
    ] + [DeclareLaunchArgument(group, default_value=DEFAULTS[group],
                               description=f'start {", ".join(GROUPS[group])}')
         for group in DEFAULTS]
    groups = []
    for group, names in GROUPS.items():
        nodes = [Node(package='av_perception', executable=name, name=name,
                      parameters=[params], arguments=['--ros-args', '--log-level', log_level],
                      output='screen')
                 for name in names]
        groups.append(GroupAction(nodes, condition=IfCondition(LaunchConfiguration(group))
                                  if group else None))
    robot = GroupAction([
        PushRosNamespace(LaunchConfiguration('namespace')),
        SetParameter(name='use_sim_time', value=LaunchConfiguration('use_sim_time')),
        SetRemap(src='/tf', dst='tf'),
        SetRemap(src='/tf_static', dst='tf_static'),
        *groups,
    ])
    return LaunchDescription([*args, robot])
