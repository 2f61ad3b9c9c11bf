"""Rotation from sight and sound (Sound Localization from Motion): yaw between
two camera frames and the binaural direction of a static source, learned
together without labels (numpy only; training is in av_perception.train.rotation)."""
