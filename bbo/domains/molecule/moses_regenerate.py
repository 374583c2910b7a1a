"""Rebuild ``bbo/domains/molecule/data/*.smi.xz`` from the ``molsets==0.3.1`` wheel on PyPI.

The molsets package itself cannot be imported with today's dependencies, so we only read the two
CSV files out of its wheel (a zip archive) and recompress them.
"""

from __future__ import annotations

import gzip
import lzma
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DEST = Path(__file__).parent / "data"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, "molsets==0.3.1"], check=True
        )
        (wheel,) = Path(tmp).glob("molsets-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            for split in ("train", "test"):
                raw = gzip.decompress(zf.read(f"moses/dataset/data/{split}.csv.gz")).decode()
                lines = raw.splitlines()[1:]  # drop the "SMILES" header
                with lzma.open(DEST / f"{split}.smi.xz", "wt", preset=9 | lzma.PRESET_EXTREME) as out:
                    out.write("\n".join(lines) + "\n")
                print(f"{split}: {len(lines)} SMILES")
            (DEST / "LICENSE").write_bytes(zf.read("molsets-0.3.1.dist-info/LICENSE"))


if __name__ == "__main__":
    main()
