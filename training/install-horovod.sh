#!/usr/bin/env bash
# Build Horovod 0.28.1 against the TensorFlow botyard pins (tensorflow-cpu 2.18.1), with
# the gloo controller and no MPI, for `botyard train --workers N`.
#
# About 3-5 minutes on 2 cores. Needs a C++ compiler and cmake 3.13-3.x (the cmake 4 pip
# wheel breaks gloo's build). --no-build-isolation: Horovod's build must see the installed
# TensorFlow. Unpatched 0.28.1 does not compile against TensorFlow 2.19/2.20 (its XLA ops
# file includes headers those wheels moved or lack), hence the pin.
set -euo pipefail
PYTHON="${PYTHON:-python}"

if "$PYTHON" -c "import horovod.tensorflow" 2>/dev/null; then
    echo "horovod already installed: $("$PYTHON" -c 'import horovod; print(horovod.__version__)')"
    exit 0
fi
if ! command -v cmake >/dev/null; then
    echo "install-horovod: cmake not found (need 3.13-3.x, e.g. apt-get install cmake)" >&2
    exit 1
fi
major="$(cmake --version | head -1 | sed -E 's/[^0-9]*([0-9]+)\..*/\1/')"
if [ "$major" -ge 4 ]; then
    echo "install-horovod: $(command -v cmake) is cmake $major; gloo needs cmake 3.x (pip uninstall cmake?)" >&2
    exit 1
fi
"$PYTHON" -m pip install wheel setuptools packaging
HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
    "$PYTHON" -m pip install --no-build-isolation "horovod==0.28.1"
"$PYTHON" -c "import horovod.tensorflow as hvd; hvd.init(); print('horovod', hvd.__name__, 'ready, size', hvd.size())"
