"""Launch the simulated robot (sim_world), the audio monitor and the recorder with config/sim.yaml (for users with a ROS install).

    ros2 launch av_perception sim.launch.py [params_file:=/path/to/sim.yaml]

Without a ROS install, ``av-perception run config/sim.yaml`` starts the same
nodes with the same file in one process.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory('av_perception'), 'config',
                                  'sim.yaml')
    params = LaunchConfiguration('params_file')
    nodes = [
        Node(package='av_perception', executable='sim_world', name='sim_world',
             parameters=[params], output='screen'),
        Node(package='av_perception', executable='sound_direction', name='sound_direction',
             parameters=[params], output='screen'),
        Node(package='av_perception', executable='sound_direction', name='sound_direction',
             namespace='binaural', parameters=[params], output='screen'),
        Node(package='av_perception', executable='echo_depth', name='echo_depth',
             parameters=[params], output='screen'),
        Node(package='av_perception', executable='rotation', name='rotation',
             parameters=[params], output='screen'),
        Node(package='av_perception', executable='av_heatmap', name='av_heatmap',
             parameters=[params], output='screen'),
        Node(package='av_perception', executable='audio_monitor', name='audio_monitor',
             parameters=[params], output='screen'),
        Node(package='av_perception', executable='recorder', name='recorder',
             parameters=[params], output='screen'),
    ]
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='ROS 2 params file of the nodes'),
        *nodes,
    ])
