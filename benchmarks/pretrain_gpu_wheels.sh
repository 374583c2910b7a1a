#!/usr/bin/env bash
# Download into .whl/ the wheels that benchmarks/pretrain_gpu.sh and compare_gpu.sh install on a GPU machine that has
# PyTorch but not these packages (Python 3.12, x86_64 Linux). RDKit is left out on purpose: the
# pretraining does not import it, and at 32 MB it would not fit beside the repository in what such
# a machine receives. Versions are this project's tested ones; .whl/ is ignored by git.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=(diffusers==0.42.1 selfies==2.2.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
        typing-inspection==0.4.5 typing-extensions==4.16.0 importlib-metadata==10.2.0
        huggingface-hub==2.4.0 hf-xet==1.8.0 httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 safetensors==0.8.0
        pebble==5.2.3 cma==4.5.0)
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64 \
  -d .whl "${wheels[@]}"
du -sh .whl
