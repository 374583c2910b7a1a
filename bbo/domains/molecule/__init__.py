"""The molecule domain: SMILES strings, everything chemistry-specific in one package.

- :mod:`~bbo.domains.molecule.domain`: the :class:`MoleculeDomain` (validity, canonical-SMILES
  identity, MOSES reference draws, naturalness, RDKit drawings, graph edits);
- :mod:`~bbo.domains.molecule.vocab` and :mod:`~bbo.domains.molecule.codec`: the SELFIES
  vocabulary and the VAE codec a latent diffusion prior decodes through;
- :mod:`~bbo.domains.molecule.pretrain` (``bbo pretrain molecule``): the prior's training recipe;
- :mod:`~bbo.domains.molecule.edits`: Jensen's graph crossover and mutation (the GA, BO pools);
- :mod:`~bbo.domains.molecule.metrics`: MOSES's naturalness metrics, FCD included;
- :mod:`~bbo.domains.molecule.moses`: the MOSES SMILES shipped with the package.
"""

from typing import Any

from bbo.domains.molecule.codec import (
    MoleculeVAE,  # registers the codec with the domain
)

__all__ = ["MoleculeDomain", "MoleculeVAE"]


def __getattr__(name: str) -> Any:
    """The domain (and with it RDKit) is imported when first asked for, so that training or
    loading the codec, which needs no chemistry, also runs where RDKit is not installed."""
    if name == "MoleculeDomain":
        from bbo.domains.molecule.domain import MoleculeDomain

        return MoleculeDomain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
