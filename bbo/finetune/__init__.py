"""Fine-tuning of diffusion priors against a reward: SQDF (``sqdf.py``) with its trajectory replay
buffer (``replay.py``), and GRAFT / P-GRAFT (``graft.py``)."""

from bbo.diffusion.denoisers import NoiseGatedCorrection, StitchedDenoiser
from bbo.finetune.graft import PGRAFT
from bbo.finetune.replay import ReplayBuffer
from bbo.finetune.sqdf import SQDF

__all__ = ["PGRAFT", "SQDF", "NoiseGatedCorrection", "ReplayBuffer", "StitchedDenoiser"]
