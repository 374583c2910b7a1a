"""Data shipped with bbo: the MOSES SMILES splits (see ``bbo/data/moses/README.md``)."""

from bbo.data.moses import moses_smiles

__all__ = ["moses_smiles"]
