# Sourced from the repository root by the GPU scripts (pretrain_gpu.sh, compare_gpu.sh): the
# repository on PYTHONPATH and, when .whl/ holds wheels (`bash benchmarks/pretrain_gpu_wheels.sh`),
# the packages such a machine lacks installed into /tmp/site ahead of it.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
export PYTHONUNBUFFERED=1
