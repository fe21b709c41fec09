"""One size grammar everywhere: the device runner's copy, `bench --shapes` and `info --size` accept and reject
exactly the strings :mod:`aestheticnet.sizes` does."""

import itertools
import random

import pytest
from click.testing import CliRunner

from aestheticnet.bench import runner
from aestheticnet.cli import main
from aestheticnet.sizes import SizeError, parse_shape

HAND_PICKED = [
    "224x224",
    " 512X384 ",
    "3x320x256",
    "1x96x640",
    "32x32",
    "64x96",
    "2x64x64",
    "0x64x64",
    "64x0",
    "0x0",
    "224",
    "",
    " ",
    "224x",
    "x224",
    "224x224x",
    "2x3x4x5",
    "-32x32",
    "32x-32",
    "+32x32",
    "224 x 224",
    "224x224.0",
    "a x b",
    "224,224",
    "224*224",
    "224X224X2",
    "00032x0064",
    "1x1x32",
    "32x32\n",
    "\t32x32",
    "３２x３２",
    "٣٢x٣٢",
    "32x32 x",
    "x",
    "xx",
    "1e2x32",
    "0x32x32",
    "1x0x32",
    "100x96",
    "4x100x96",
]


def random_strings(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = ["0", "1", "2", "3", "6", "4", "x", "X", " ", ",", "-", ".", "32", "64", "96", "224"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))) for _ in range(count)]


def sizes_answer(text: str):
    try:
        shape = parse_shape(text)
    except SizeError:
        return None
    return shape.batch, shape.height, shape.width


def runner_answer(text: str):
    try:
        return runner.parse_shape(text, 32)
    except runner.RunnerError:
        return None


@pytest.mark.parametrize("strings", [HAND_PICKED, random_strings(4000)], ids=["hand-picked", "random"])
def test_runner_copy_accepts_and_rejects_what_sizes_does(strings):
    mismatches = [(s, sizes_answer(s), runner_answer(s)) for s in strings if sizes_answer(s) != runner_answer(s)]
    assert not mismatches, mismatches[:10]
    assert any(sizes_answer(s) for s in strings) and not all(sizes_answer(s) for s in strings)


def test_all_numbers_small_and_odd():
    strings = [f"{n}x{h}x{w}" for n, h, w in itertools.product((0, 1, 2), (0, 31, 32, 33, 64), (0, 32, 48, 96))]
    strings += [f"{h}x{w}" for h, w in itertools.product((0, 16, 32, 320), (0, 32, 100))]
    assert [sizes_answer(s) for s in strings] == [runner_answer(s) for s in strings]


COMMAND_STRINGS = [
    "64x64",
    " 32X64 ",
    "2x32x64",
    "1x32x32",
    "64",
    "64x",
    "x64",
    "0x64x64",
    "64x48",
    "2x3x4x5",
    "-32x32",
    "64 x 64",
    "64x64.0",
    "",
]


@pytest.mark.parametrize("text", COMMAND_STRINGS)
def test_bench_and_info_accept_and_reject_the_same_strings(tmp_path, text):
    accepted = sizes_answer(text) is not None
    cli = CliRunner()
    info = cli.invoke(main, ["info", "aestheticnet", "--layers", "5", "--init-channels", "8", "--size", text])
    assert (info.exit_code == 0) == accepted, info.output
    # The size is checked before the model file: a valid size reaches the missing-file error.
    bench = cli.invoke(main, ["bench", str(tmp_path / "absent.onnx"), "--shapes", text])
    assert bench.exit_code == 2, bench.output
    assert ("no such model file" in bench.output) == accepted, bench.output
    if not accepted:
        assert "--size" in info.output and "--shapes" in bench.output


@pytest.mark.parametrize("text", COMMAND_STRINGS)
def test_verify_and_the_pipeline_config_accept_and_reject_the_same_strings(tmp_path, text):
    from aestheticnet.pipeline.config import PipelineConfig

    accepted = sizes_answer(text) is not None
    # verify checks --shapes before it looks for the files: a valid size reaches the missing-artifact error.
    verify = CliRunner().invoke(
        main,
        [
            "verify",
            str(tmp_path / "absent.onnx"),
            "--reference",
            str(tmp_path / "absent.safetensors"),
            "--shapes",
            text,
        ],
    )
    assert verify.exit_code == 2, verify.output
    assert ("no such artifact" in verify.output) == accepted, verify.output
    for section in ("verify", "bench"):
        try:
            PipelineConfig.from_dict({section: {"shapes": [text]}})
        except ValueError as exc:
            assert not accepted and f"{section}.shapes" in str(exc), exc
        else:
            assert accepted, f"{section}.shapes accepted {text!r}"
