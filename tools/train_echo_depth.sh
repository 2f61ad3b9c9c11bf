#!/bin/sh
# How the shipped echo-depth models were made (av_perception/models/echo_*.onnx).
# Every long step runs with one thread; run from the repository root.
set -e
PY=${PY:-.venv/bin/python}
AVP="$PY -m av_perception.cli"
DATA=${DATA:-data}
export OMP_NUM_THREADS=1
# 1. the stand-in visual teacher (RGB -> depth) learns from the gt/depth of the
#    200 training rooms with every stream (shared with sound direction)
[ -f $DATA/direction_train/index.jsonl ] || \
  $AVP simulate --scenes 200 --out $DATA/direction_train --teacher --seed 0
$AVP train echo-teacher --bags $DATA/direction_train --out av_perception/models/echo_teacher.onnx --epochs 35
# 2. the students' rooms: the same 200 and 200 more, camera, echo (the default
#    robot's cardioid echo head) and ground truth only (about 3x faster)
[ -f $DATA/echo_train/index.jsonl ] || \
  $AVP simulate --scenes 400 --out $DATA/echo_train --echo-only --seed 0 --jobs 1
# 3. echo / camera pairs with the teacher's pseudo-depth and feature maps
$AVP dataset --bags $DATA/echo_train --out $DATA/echo_dataset \
  --teacher av_perception/models/echo_teacher.onnx
# 4. the three students (the shipped default is the SAM one, its triplet term
#    weighted 0.1: at 1.0 it pulled the student below plain pseudo-depth;
#    trained with two threads)
OMP_NUM_THREADS=2 $AVP train echo-depth --data $DATA/echo_dataset --variant sam --epochs 10 \
  --triplet-weight 0.1 --out av_perception/models/echo_depth.onnx
$AVP train echo-depth --data $DATA/echo_dataset --variant pseudo --epochs 10 --out av_perception/models/echo_depth_pseudo.onnx
$AVP train echo-depth --data $DATA/echo_dataset --variant gt --epochs 10 --out av_perception/models/echo_depth_gt.onnx
# 5. the benchmark (recomputes the mean-depth baseline from the training data)
$PY bench/echo_depth.py --train-data $DATA/echo_dataset
