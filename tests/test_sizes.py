"""The one image-size grammar: HxW or NxHxW, multiples of 32."""

import pytest

from aestheticnet.sizes import Shape, SizeError, parse_shape, parse_shapes


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("224x224", Shape(224, 224)),
        (" 512X384 ", Shape(512, 384)),
        ("3x320x256", Shape(320, 256, 3)),
        ("1x96x640", Shape(96, 640)),
    ],
)
def test_accepts(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize(
    "text",
    [
        "224",
        "",
        "224x",
        "x224",
        "224x224x",
        "0x224x224",
        "224x200",
        "2x3x4x5",
        "-32x32",
        "224 x 224",
        "224x224.0",
        "a x b",
        "0x0",
    ],
)
def test_rejects_naming_the_option(text):
    with pytest.raises(SizeError, match="--shapes"):
        parse_shape(text, "--shapes")


def test_list_keeps_order_drops_duplicates_and_refuses_empty():
    assert parse_shapes("224x224, 3x320x256,224x224") == (Shape(224, 224), Shape(320, 256, 3))
    assert parse_shapes(["96x128"]) == (Shape(96, 128),)
    with pytest.raises(SizeError, match="empty"):
        parse_shapes(" , ")


def test_shape_value_checks_and_prints_back():
    assert str(Shape(320, 256, 3)) == "3x320x256" and str(Shape(224, 224)) == "224x224"
    assert parse_shape(str(Shape(96, 640, 2))) == Shape(96, 640, 2)
    with pytest.raises(SizeError):
        Shape(100, 224)
    with pytest.raises(SizeError):
        Shape(224, 224, 0)
