#!/usr/bin/env bash
# Turn a fresh clone on a Debian machine into a working .venv:
#   ROS 2 Kilted wheels (FastDDS), the generated messages (av_perception's own,
#   and tf2_msgs / audio_common_msgs where no ROS install has them), the CPU
#   build of torch==2.13.0, onnxruntime-gpu, the simulator, sounddevice (sound
#   cards) and test tools, and
#   this package (editable).
# Idempotent: each step keeps a stamp of what it was built from and is skipped
# when nothing changed, so a second run takes a few seconds.
#
# Environment:
#   AVP_DISTRO  kilted (default) or jazzy: the ROS 2 wheels of that distribution
#               (jazzy: the second venv the ROS-layer tests also run against)
#   AVP_VENV    where the venv goes (default: <repo>/.venv, <repo>/.venv-jazzy for jazzy)
#   AVP_PYTHON  the CPython 3.11 to build it from (default: python3)
#   AVP_EXTRAS  extras of this package to install (default: gpu,train,sim,robot,test)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DISTRO=${AVP_DISTRO:-kilted}
case $DISTRO in
  kilted) ROS_REQ=requirements/ros.txt; CONSTRAINTS=requirements/constraints.txt
          VENV=${AVP_VENV:-$ROOT/.venv} ;;
  jazzy)  ROS_REQ=requirements/ros-jazzy.txt; CONSTRAINTS=requirements/constraints-jazzy.txt
          VENV=${AVP_VENV:-$ROOT/.venv-jazzy} ;;
  *) printf '[setup] error: AVP_DISTRO must be kilted or jazzy, got %s\n' "$DISTRO" >&2; exit 1 ;;
esac
PYTHON=${AVP_PYTHON:-python3}
EXTRAS=${AVP_EXTRAS:-gpu,train,sim,robot,test}
STAMPS=$VENV/.av_perception_setup
START=$(date +%s)

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages: compilers and CMake for rosidl, Python headers, venv,
#        PortAudio for sound cards, espeak-ng and sox for simulated sources.
missing=()
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2' || missing+=(libportaudio2)
if command -v "$PYTHON" >/dev/null 2>&1; then
  "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  inc=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$inc/Python.h" ] || missing+=(python3-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
    SUDO=sudo
  fi
  command -v apt-get >/dev/null 2>&1 || die "not a Debian machine; install by hand: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "ROS 2 Kilted wheels are built for CPython 3.11; $PYTHON is $("$PYTHON" -V 2>&1). Set AVP_PYTHON."

# --- 2. The venv.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
VPY=$VENV/bin/python

hash_of() { (cd "$ROOT" && cat "$@" | sha256sum | cut -d' ' -f1); }

# --- 3. Python packages, all pinned by requirements/constraints.txt.
pip_hash=$(hash_of "$CONSTRAINTS" "$ROS_REQ" setup.py setup.cfg; echo "$EXTRAS")
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$pip_hash" ]; then
  log "installing Python packages (ROS 2 $DISTRO wheels, torch CPU, onnxruntime-gpu, ...)"
  "$VPY" -m pip install -q --disable-pip-version-check \
    -c "$ROOT/$CONSTRAINTS" \
    -r "$ROOT/$ROS_REQ" \
    -e "$ROOT[$EXTRAS]" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$pip_hash" > "$STAMPS/pip"
  rm -f "$STAMPS/cmake_paths" "$STAMPS/interfaces"
fi

# --- 4. The wheels' exported CMake files name the build machine's Python
#        include dir and numpy include dir: point them at this interpreter's.
if [ ! -f "$STAMPS/cmake_paths" ]; then
  py_inc=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  np_inc=$("$VPY" -c 'import numpy; print(numpy.get_include())')
  { grep -rlZ --include='*.cmake' -e '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true; } \
    | xargs -0 -r sed -i \
        -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
        -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g"
  touch "$STAMPS/cmake_paths"
fi

# --- 5. Messages, generated with rosidl by plain CMake into the venv: this
#        package's own (the root CMakeLists.txt with AVP_INSTALL_PYTHON=OFF:
#        messages only, the Python modules under <venv>/lib/av_perception_generated,
#        which av_perception/__init__.py finds), and, where the environment lacks
#        them (the wheels do), tf2_msgs and audio_common_msgs (interfaces/compat).
build_interface() {  # $1 = source dir, $2 = build name, then extra CMake arguments
  local src=$1 name=$2
  shift 2
  local bld=$VENV/build/$name
  AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV cmake -S "$src" -B "$bld" -G Ninja \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF \
    -DCMAKE_BUILD_TYPE=Release "$@" > "$bld.log" 2>&1 \
  && AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV cmake --build "$bld" >> "$bld.log" 2>&1 \
  && cmake --install "$bld" >> "$bld.log" 2>&1 \
  || { echo "[setup] error: building $name failed; see $bld.log" >&2; tail -20 "$bld.log" >&2; return 1; }
}
if_hash=$( (cd "$ROOT" && find msg interfaces CMakeLists.txt package.xml -type f | sort | xargs cat; \
            echo "$VPY") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMPS/interfaces" 2>/dev/null)" != "$if_hash" ]; then
  mkdir -p "$VENV/build"
  compat=()
  for std in tf2_msgs audio_common_msgs; do
    if ! "$VPY" -c "import $std.msg" >/dev/null 2>&1 || [ -f "$VENV/share/$std/av_perception_compat" ]; then
      compat+=("$std")
    fi
  done
  log "generating messages: av_perception ${compat[*]}"
  pids=()
  # from a copy outside the checkout: the venv (and the numpy include dir that
  # Jazzy's rosidl_generator_py exports) lies inside it, which CMake refuses
  rm -rf "$VENV/build/av_perception_src" "$VENV/build/av_perception"
  mkdir -p "$VENV/build/av_perception_src"
  cp -r "$ROOT/CMakeLists.txt" "$ROOT/package.xml" "$ROOT/msg" "$VENV/build/av_perception_src/"
  build_interface "$VENV/build/av_perception_src" av_perception -DAVP_INSTALL_PYTHON=OFF \
    -DPYTHON_INSTALL_DIR=lib/av_perception_generated & pids+=($!)
  for std in "${compat[@]}"; do build_interface "$ROOT/interfaces/compat/$std" "$std" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid"; done
  for std in "${compat[@]}"; do  # remember which standard packages are ours to rebuild
    touch "$VENV/share/$std/av_perception_compat"
  done
  echo "$if_hash" > "$STAMPS/interfaces"
fi

# --- 6. Check that everything imports (the package's own self-check).
"$VENV/bin/av-perception" doctor --quiet \
  || die "the environment does not work; run: $VENV/bin/av-perception doctor"
log "ready in $(( $(date +%s) - START )) s: $VENV (try: $VENV/bin/av-perception --help)"
