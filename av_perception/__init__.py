"""av_perception: perception with sound for mobile robots.

Library modules (audio front end, geometry, conversions, simulation, models,
training) import no ROS; the ROS 2 nodes in ``av_perception.nodes`` are thin
shells that convert messages, call the library and publish.
"""

__version__ = '0.1.0'
