"""TFLite conversion guards: no downloads, calibration required for int8, metadata round trip."""

import json

import pytest

from aestheticnet.export.errors import ExportError

pytest.importorskip("onnx2tf")


def test_onnx2tf_cannot_download_sample_images():
    import onnx2tf.onnx2tf as o2t

    from aestheticnet.export.tflite.convert import _no_downloads

    original = o2t.download_test_image_data
    with _no_downloads(), pytest.raises(ExportError, match="tried to download sample images"):
        o2t.download_test_image_data()
    assert o2t.download_test_image_data is original


def test_arguments_are_checked_before_any_work(tmp_path):
    from aestheticnet.export.tflite.convert import convert_tflite

    with pytest.raises(ExportError, match=r"TFLite precision\(s\) \['int4'\] unknown"):
        convert_tflite(tmp_path / "missing.onnx", {"int4": tmp_path / "m.tflite"})
    with pytest.raises(ExportError, match="full-int8 TFLite needs calibration images"):
        convert_tflite(tmp_path / "missing.onnx", {"int8": tmp_path / "m.tflite"})
    assert list(tmp_path.iterdir()) == []


def test_metadata_round_trip_in_a_flatbuffer():
    import tensorflow as tf

    from aestheticnet.artifacts.embedded import embed_tflite_metadata, read_tflite_metadata

    fn = tf.function(lambda x: tf.nn.relu(x), input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    flat = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn).convert()
    first = embed_tflite_metadata(flat, {"aestheticnet.manifest": json.dumps({"a": 1})})
    again = embed_tflite_metadata(first, {"aestheticnet.manifest": json.dumps({"a": 2})})  # replaces, not appends
    meta = read_tflite_metadata(again)
    assert json.loads(meta["aestheticnet.manifest"]) == {"a": 2}
    assert list(meta).count("aestheticnet.manifest") == 1
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_content=again).allocate_tensors()  # still a valid model


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_redilation_is_exact_for_float_and_int8_filters():
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from aestheticnet.export.tflite.rewrites import redilate

    rng = np.random.default_rng(0)
    compact = rng.standard_normal((3, 3, 4, 1)).astype(np.float32)
    zero_tapped = np.zeros((5, 5, 4, 1), np.float32)
    zero_tapped[::2, ::2] = compact

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 4], tf.float32)])
    def fn(x):
        return tf.nn.depthwise_conv2d(tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]]), zero_tapped, [1, 1, 1, 1], "VALID")

    def run(flat, x):
        it = Interpreter(model_content=flat)
        i = it.get_input_details()[0]
        it.resize_tensor_input(i["index"], x.shape)
        it.allocate_tensors()
        it.set_tensor(i["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])

    def rep():
        for _ in range(4):
            yield [rng.standard_normal((1, 8, 8, 4)).astype(np.float32)]

    for quantize in (False, True):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = rep
        flat = converter.convert()
        new, count = redilate(flat)
        assert count == 1 and len(new) < len(flat)
        for shape in [(1, 7, 7, 4), (2, 10, 8, 4), (1, 3, 20, 4)]:
            x = rng.standard_normal(shape).astype(np.float32)
            np.testing.assert_allclose(run(new, x), run(flat, x), rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore")
def test_input_normalisation_prefix_is_found_and_stays_float_in_int8():
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from aestheticnet.export.tflite.graph import input_prefix_tensors

    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)

    def normalised(x):  # a local contrast normalisation in front of the first convolution
        mu = tf.nn.avg_pool2d(x, 3, 1, "SAME")
        sigma = tf.sqrt(tf.nn.relu(tf.nn.avg_pool2d(x * x, 3, 1, "SAME") - mu * mu))
        return (x - mu) / (sigma + 0.05)

    spec = [tf.TensorSpec([1, 16, 16, 3], tf.float32)]
    with_norm = tf.function(lambda x: tf.nn.relu(tf.nn.conv2d(normalised(x), kernel, 1, "SAME")), input_signature=spec)
    plain = tf.function(
        lambda x: tf.nn.relu(tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), kernel, 1, "VALID")),
        input_signature=spec,
    )

    def convert(fn):
        return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)

    assert input_prefix_tensors(convert(plain).convert()) == []  # padding alone is not a prefix
    prefix = input_prefix_tensors(convert(with_norm).convert())
    assert len(prefix) >= 5

    def rep():
        for _ in range(8):
            yield [rng.standard_normal((1, 16, 16, 3)).astype(np.float32)]

    converter = convert(with_norm)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = rep
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=rep,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=prefix),
    )
    it = Interpreter(model_content=debugger.get_nondebug_quantized_model())
    dtypes = {d["op_name"]: it.get_tensor_details()[d["outputs"][0]]["dtype"] for d in it._get_ops_details()}
    assert dtypes["SQRT"] == np.float32 and dtypes["DIV"] == np.float32  # the normalisation: float
    assert dtypes["CONV_2D"] == np.int8  # the network: int8


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("input_norm", ["mscn", "lcn"])
def test_input_normaliser_is_written_in_tensorflow_and_computes_the_models_function(tmp_path, tiny_synth, input_norm):
    import torch
    from ai_edge_litert.interpreter import Interpreter

    from aestheticnet.artifacts import Format, Precision, read_manifest
    from aestheticnet.export import ExportOptions, VerifyOptions, export_checkpoint, verify_artifact
    from aestheticnet.models import create_model, save
    from aestheticnet.sizes import Shape

    torch.manual_seed(0)
    model = create_model("aestheticnet_star", layers=3, init_channels=8, input_norm=input_norm).eval()
    ckpt = save(model, tmp_path / "m.safetensors")
    precisions = [Precision.FP32, Precision.INT8] if input_norm == "mscn" else [Precision.FP32]
    options = ExportOptions(data=tiny_synth, calibration_samples=16)
    report = export_checkpoint(ckpt, [Format.TFLITE], precisions, tmp_path / "out", options, log=None)
    assert len(report.artifacts) == len(precisions), report.failures
    for artifact in report.artifacts:
        assert "input_normaliser_in_tensorflow" in read_manifest(artifact.path).export["rewrites"]
        it = Interpreter(model_path=str(artifact.path))
        it.allocate_tensors()
        ops = [op["op_name"] for op in it._get_ops_details()]
        prefix = ops[: ops.index("CONV_2D")]
        # No divisor map (FILL of ones, DIV) and no zero padding: pools with TensorFlow's SAME padding instead.
        normaliser = prefix[: prefix.index("RSQRT")]
        assert "FILL" not in normaliser and "DIV" not in normaliser and "PAD" not in normaliser, " ".join(prefix)
        assert prefix.count("AVERAGE_POOL_2D") == 4 and prefix.count("TRANSPOSE") == 4, prefix
        shapes = [Shape(96, 128), Shape(160, 96, batch=2)]
        verified = verify_artifact(artifact.path, ckpt, VerifyOptions(shapes, data=tiny_synth, samples=16))
        assert verified.passed, verified.to_dict()


@pytest.mark.filterwarnings("ignore")
def test_int8_average_pools_stay_float_so_xnnpack_takes_the_whole_graph(tmp_path):
    import dataclasses

    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from aestheticnet.export.int8.recipe import DEFAULT_RECIPE
    from aestheticnet.export.tflite.int8 import convert_int8

    rng = np.random.default_rng(0)
    k1 = rng.standard_normal((3, 3, 3, 16)).astype(np.float32) * 0.3
    k2 = rng.standard_normal((3, 3, 16, 16)).astype(np.float32) * 0.1

    def network(x):
        y = tf.nn.avg_pool2d(tf.nn.relu(tf.nn.conv2d(x, k1, 1, "SAME")), 3, 1, "SAME")
        return tf.nn.relu(tf.nn.conv2d(y, k2, 1, "SAME"))

    fn = tf.function(network, input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])

    def converter():
        return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)

    float_path = tmp_path / "float.tflite"
    float_path.write_bytes(converter().convert())
    images = [rng.standard_normal((3, 32, 32)).astype(np.float32) for _ in range(8)]

    def int8(recipe):
        rewrites: list[str] = []
        flat, _ = convert_int8(converter(), float_path, images, recipe, tmp_path, rewrites)
        it = Interpreter(model_content=flat)
        it.allocate_tensors()
        ops = it._get_ops_details()
        pool = next(op for op in ops if op["op_name"] == "AVERAGE_POOL_2D")
        dtype = it.get_tensor_details()[pool["outputs"][0]]["dtype"]
        return dtype, [op["op_name"] for op in ops].count("DELEGATE"), rewrites

    recipe = dataclasses.replace(DEFAULT_RECIPE, bias_correction=False)  # no classifier here
    dtype, partitions, rewrites = int8(recipe)
    assert dtype == np.float32 and partitions == 1 and "float_average_pools x1" in rewrites
    dtype, partitions, _ = int8(dataclasses.replace(recipe, tflite_float_average_pools=False))
    assert dtype == np.int8 and partitions == 2  # XNNPACK leaves the int8 pool out: the graph splits
