#!/bin/sh
# How the shipped echo-depth models were made (av_perception/models/echo_*.onnx).
# Every long step runs with one thread; run from the repository root.
set -e
PY=${PY:-.venv/bin/python}
AVP="$PY -m av_perception.cli"
DATA=${DATA:-data}
export OMP_NUM_THREADS=1
# 1. 200 training rooms x 8 poses with every stream (shared with sound direction) ...
[ -f $DATA/direction_train/index.jsonl ] || \
  $AVP simulate --scenes 200 --out $DATA/direction_train --teacher --seed 0
# ... and 200 more rooms with the camera, the echo and ground truth only (about 3x faster)
[ -f $DATA/echo_train_more/index.jsonl ] || \
  $AVP simulate --scenes 200 --first 200 --out $DATA/echo_train_more --echo-only --jobs 1
# 2. the stand-in visual teacher (RGB -> depth, on the first 200 rooms' gt/depth)
$AVP train echo-teacher --bags $DATA/direction_train --out av_perception/models/echo_teacher.onnx --epochs 35
# 3. echo / camera pairs with the teacher's pseudo-depth and feature maps
$AVP dataset --bags $DATA/direction_train $DATA/echo_train_more --out $DATA/echo_dataset \
  --teacher av_perception/models/echo_teacher.onnx
# 4. the three students (the shipped default is the SAM one)
$AVP train echo-depth --data $DATA/echo_dataset --variant sam --epochs 10 --out av_perception/models/echo_depth.onnx
$AVP train echo-depth --data $DATA/echo_dataset --variant pseudo --epochs 10 --out av_perception/models/echo_depth_pseudo.onnx
$AVP train echo-depth --data $DATA/echo_dataset --variant gt --epochs 10 --out av_perception/models/echo_depth_gt.onnx
# 5. the benchmark (recomputes the mean-depth baseline from the training data)
$PY bench/echo_depth.py --train-data $DATA/echo_dataset
