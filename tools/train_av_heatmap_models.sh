#!/usr/bin/env bash
# Reproduce the shipped audio-visual localization models (see docs/av_heatmap.md, "Training recipe").
#   tools/train_av_heatmap_models.sh [DATA]
# DATA: 600 training rooms in the simulator's close-up view of the source objects
# (simulate --view sources --seed 0), made here if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/av_heatmap_sources}
AVP=.venv/bin/av-perception
[ -f "$DATA/index.jsonl" ] || $AVP simulate --scenes 600 --view sources --out "$DATA" --seed 0
# checkpoints and the feature cache go to av_perception/models/*_checkpoints/ (git-ignored)
$AVP train av-heatmap --bags "$DATA" --out av_perception/models/av_heatmap.onnx
$AVP train av-heatmap --bags "$DATA" --no-extra-positives \
  --out av_perception/models/av_heatmap_single_positive.onnx
