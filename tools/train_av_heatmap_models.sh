#!/usr/bin/env bash
# Reproduce the shipped audio-visual localization models (see README, "Audio-visual heatmap").
#   tools/train_av_heatmap_models.sh [DIRECTION_DATA] [EXTRA_DATA]
# DIRECTION_DATA: the 200 training rooms of the direction models (simulate --teacher --seed 0);
# EXTRA_DATA: 47 more training rooms (ids 200-246, seed 0), made here if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/direction_train}
MORE=${2:-data/av_heatmap_train_more}
AVP=.venv/bin/av-perception
[ -f "$DATA/index.jsonl" ] || $AVP simulate --scenes 200 --out "$DATA" --teacher --seed 0
[ -f "$MORE/index.jsonl" ] || $AVP simulate --scenes 47 --first 200 --out "$MORE" --seed 0
# checkpoints and the feature cache go to av_perception/models/*_checkpoints/ (git-ignored)
$AVP train av-heatmap --bags "$DATA" --bags "$MORE" --out av_perception/models/av_heatmap.onnx
$AVP train av-heatmap --bags "$DATA" --bags "$MORE" --no-extra-positives \
  --out av_perception/models/av_heatmap_single_positive.onnx
