"""SELFIES tokens for molecules: every token sequence decodes to a valid molecule, which is why
the molecular prior generates in SELFIES rather than SMILES."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import selfies as sf

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"


class SelfiesVocabulary:
    """Token <-> id maps and fixed-length id arrays (``max_len`` tokens plus EOS, PAD after)."""

    def __init__(self, tokens: Sequence[str], max_len: int) -> None:
        self.tokens = [PAD, BOS, EOS] + [t for t in tokens if t not in (PAD, BOS, EOS)]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.max_len = int(max_len)

    @classmethod
    def build(cls, smiles: Iterable[str], coverage: float = 0.995) -> SelfiesVocabulary:
        """Vocabulary of every token in ``smiles`` and the length that covers ``coverage`` of them."""
        counts: Counter[str] = Counter()
        lengths = []
        for s in smiles:
            tokens = list(sf.split_selfies(sf.encoder(s)))
            counts.update(tokens)
            lengths.append(len(tokens))
        return cls(sorted(counts), int(np.ceil(np.quantile(lengths, coverage))))

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def seq_len(self) -> int:
        """Positions per encoded molecule: ``max_len`` tokens and the EOS."""
        return self.max_len + 1

    def tokenize(self, smiles: str) -> list[str] | None:
        """SELFIES tokens of a SMILES; None if it cannot be encoded, is too long or has an
        unknown token."""
        try:
            tokens = list(sf.split_selfies(sf.encoder(smiles)))
        except (sf.EncoderError, TypeError):
            return None
        if len(tokens) > self.max_len or any(t not in self.index for t in tokens):
            return None
        return tokens

    def encode(self, smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``n x seq_len`` int64 ids (tokens, EOS, PAD) and a boolean mask of the encodable ones."""
        ids = np.zeros((len(smiles), self.seq_len), dtype=np.int64)
        ok = np.zeros(len(smiles), dtype=bool)
        for i, s in enumerate(smiles):
            tokens = self.tokenize(s)
            if tokens is None:
                continue
            ids[i, : len(tokens)] = [self.index[t] for t in tokens]
            ids[i, len(tokens)] = self.index[EOS]
            ok[i] = True
        return ids, ok

    def decode(self, ids: np.ndarray) -> list[str]:
        """Canonical SMILES of id rows (stopping at EOS); SELFIES makes every row a molecule,
        an empty one decodes to ``""``. RDKit is imported here, not with the module, so training
        a codec needs none."""
        from oracles.chem import canonical_smiles

        out = []
        for row in np.asarray(ids):
            tokens = []
            for i in row:
                tok = self.tokens[int(i)]
                if tok in (EOS, PAD):
                    break
                if tok != BOS:
                    tokens.append(tok)
            smiles = sf.decoder("".join(tokens)) if tokens else ""
            out.append((canonical_smiles(smiles) or "") if smiles else "")
        return out

    def config(self) -> dict[str, Any]:
        return {"tokens": self.tokens[3:], "max_len": self.max_len}
