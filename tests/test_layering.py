"""The generic layers never name one domain's chemistry: molecules live in bbo/domains/molecule."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "bbo"
GENERIC = [ROOT / "diffusion", ROOT / "finetune", ROOT / "bench", ROOT / "optimizers" / "generative.py",
           ROOT / "optimizer.py", ROOT / "strategy.py", ROOT / "study.py", ROOT / "cli.py"]
WORDS = re.compile(r"smiles|rdkit|moses|morgan|selfies", re.IGNORECASE)


def test_generic_modules_name_no_molecule_specifics():
    files = [f for p in GENERIC for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]
    assert len(files) > 10
    hits = [f"{f.relative_to(ROOT.parent)}:{i}: {line.strip()}" for f in files
            for i, line in enumerate(f.read_text().splitlines(), 1) if WORDS.search(line)]
    assert not hits, "\n".join(hits)
