#!/usr/bin/env bash
# Reproduce the shipped audio-visual localization models (see docs/av_heatmap.md, "Training recipe").
#   tools/train_av_heatmap_models.sh [DATA]
# DATA: 250 training rooms seen from the robot's own path (4000 images, 1.4 GB),
# made here if missing. No ground-truth topic is read in training.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/path_train}
AVP=.venv/bin/av-perception
export OMP_NUM_THREADS=2
NOTE="simulate --split train --scenes 250 --seed 11 --poses 16 --view path (4000 path-view images of 250 rooms, array + camera + TF, no ground truth read)"
[ -f "$DATA/index.jsonl" ] || $AVP simulate --split train --scenes 250 --seed 11 --poses 16 \
  --view path --out "$DATA" --jobs 2
# checkpoints and the feature cache go to av_perception/models/*_checkpoints/ (git-ignored)
$AVP train av-heatmap --bags "$DATA" --out av_perception/models/av_heatmap.onnx \
  --epochs 25 --threads 2 --jobs 2 --data-note "$NOTE"
$AVP train av-heatmap --bags "$DATA" --alone --out av_perception/models/av_heatmap_alone.onnx \
  --epochs 12 --threads 2 --jobs 2 --data-note "$NOTE"
