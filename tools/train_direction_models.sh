#!/usr/bin/env bash
# Reproduce the shipped direction models (see docs/direction.md, "Training recipe").
#   tools/train_direction_models.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/direction_train}
AVP=.venv/bin/av-perception
[ -f "$DATA/index.jsonl" ] || $AVP simulate --scenes 200 --out "$DATA" --teacher --seed 0
for role in array binaural; do
  name=$([ $role = array ] && echo respeaker4 || echo binaural)
  $AVP train direction --bags "$DATA" --array $role --target teacher \
    --out av_perception/models/direction_${name}.onnx
  $AVP train direction --bags "$DATA" --array $role --target labels \
    --out av_perception/models/direction_${name}_labels.onnx
done
