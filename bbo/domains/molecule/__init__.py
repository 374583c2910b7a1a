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

from bbo.domains.molecule.codec import MoleculeVAE  # registers the codec with the domain
from bbo.domains.molecule.domain import MoleculeDomain

__all__ = ["MoleculeDomain", "MoleculeVAE"]
