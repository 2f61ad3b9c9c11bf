"""The QoS profiles of the package, chosen on purpose.

- Images: sensor-data (best effort, keep last 5). A best-effort subscription
  also receives from a reliable publisher, so any camera driver works.
- Audio and everything a bag must not lose: reliable, keep last, a depth that
  covers a few seconds of chunks; audio consumers that need fresh data
  (estimators) keep ~1 s at most (``AUDIO_LIVE``), so a burst never leaves
  them working through a long backlog.
- Outputs: reliable (RViz and recorders default to reliable subscriptions).
- /tf_static: reliable + transient local, depth 1 per publisher, as tf2 does.
"""

from __future__ import annotations

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

SENSOR = qos_profile_sensor_data

#: Audio in and out: reliable, 100 chunks of history (several seconds).
AUDIO = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                   reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.VOLATILE)

#: Audio for consumers where freshness matters (estimators, monitors):
#: reliable, keep last 10 chunks (1 s of 100 ms chunks). A node that falls
#: behind never works more than ~1 s in the past: the oldest waiting chunks
#: are overwritten by new ones (latest wins), and the gap this leaves in the
#: stream's sample counter is counted as ``lost`` in /diagnostics.
AUDIO_LIVE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)

#: Outputs for RViz, bags and navigation.
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)

#: Latched topics (/tf_static, audio_common's audio_info).
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: /tf as tf2_ros publishes it.
TF = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.VOLATILE)

#: /tf_static as tf2_ros's listener subscribes to it: every publisher's latched set.
STATIC_LISTENER = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
