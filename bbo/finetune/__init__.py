"""Fine-tuning of diffusion priors against a reward: SQDF (``sqdf.py``) and its trajectory replay
buffer (``replay.py``)."""

from bbo.diffusion.denoisers import NoiseGatedCorrection
from bbo.finetune.replay import ReplayBuffer
from bbo.finetune.sqdf import SQDF

__all__ = ["SQDF", "NoiseGatedCorrection", "ReplayBuffer"]
