"""Audio-visual localization: where in the camera image a sound comes from
(Sound Source Localization is All About Cross-Modal Alignment, ICCV 2023).

Library code, no ROS: the input front end (:mod:`.frontend`), reading
samples from bags (:mod:`.dataset`), the paper's metrics (:mod:`.metrics`),
ONNX Runtime inference (:mod:`.heatmap`) and scoring (:mod:`.evaluate`).
The PyTorch networks and their training are in :mod:`.networks` and
``av_perception.train.av_heatmap``.
"""
