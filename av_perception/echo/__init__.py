"""Depth and occupancy from echoes (audio-only depth), trained by aligned
cross-modal distillation from an RGB depth teacher. Library code, no ROS."""
