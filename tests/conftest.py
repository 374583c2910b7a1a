"""Test-wide settings."""

import torch

# The models in the tests are tiny: one thread is faster than two fighting over a shared machine
# (measured 17x on a loaded 2-core box) and makes timings steadier.
torch.set_num_threads(1)
