"""``Int8Recipe``: every choice of this project's int8 quantisation in one frozen value, and its description.

ONNX (static QDQ) and TFLite (full integer) apply the whole recipe, each through one function
(:func:`aestheticnet.export.onnx.int8.quantize_int8`, :func:`aestheticnet.export.tflite.int8.convert_int8`);
CoreML applies its weight part (:func:`aestheticnet.export.coreml.convert.quantize_weights`). The text the
manifests carry about int8 is generated here from the fields, so it cannot drift from what ran.

Measured on the default AestheticNet* (20 cells, C=36, briefly fitted; ONNX QDQ, 200 images, SROCC of the int8
mean scores against fp32), each float part on top of the previous one:

====================================================================  =======  ==========
recipe                                                                SROCC    mean |d|
====================================================================  =======  ==========
everything int8 after the input normalisation                         0.539    0.062
+ the head (classifier, softmax) in float                             0.582    0.043
+ the whole tail in float (CBAM gates, global pooling, head)          0.776    0.034
+ bias correction of the classifier                                   0.897    0.015
====================================================================  =======  ==========
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_RECIPE", "Int8Recipe"]


@dataclass(frozen=True)
class Int8Recipe:
    # Outlier images (aestheticnet.export.int8.outliers): one over-exposed image of 100 set the int8 range of
    # hundreds of tensors at 91x the median image's; ordinary images stay within 4.9x, so 8x separates them.
    outlier_factor: float = 8.0
    # At most this share of the images is left out, so a dataset with heavy-tailed activations keeps its images.
    outlier_max_fraction: float = 0.1
    # When more images than that exceed the factor, none is left out: they are a tail, not outliers. Three seeds of
    # the pool-trained default network had 13, 18 and 14 of 100 beyond it, up to 46x (the most distorted images);
    # leaving out the worst 10% shifted the largest int8 score by 0.8-1.4 against fp32, keeping every image by
    # 0.21-0.37, with SROCC >= 0.996 either way.
    keep_heavy_tails: bool = True
    # Activation range equalisation (aestheticnet.export.int8.equalize), off: it helped a briefly fitted network,
    # whose depthwise outputs' channels differed in size, but on three seeds of the pool-trained default one it
    # took one seed's int8 SROCC against fp32 to 0.989 (ONNX) and 0.995 (TFLite), against 0.997 and 0.997 without
    # it (0.983 and 0.974 against 0.997 and 0.996 with the tail cut), and left the other two within 0.0006.
    equalize: bool = False
    # Largest channel gain of the equalisation: ONNX int8 SROCC 0.977 at 16, 0.980 at 64, 0.979 at 1000.
    equalize_cap: float = 64.0
    # The input normalisation in float: int8 local deviations near zero took an MSCN model's SROCC to 0.44.
    float_input_prefix: bool = True
    # The tail (CBAM gates, global pooling, classifier, softmax) in float: 0.582 -> 0.776 SROCC (table above).
    float_tail: bool = True
    # Bias correction of the float classifier for the int8 offset at the logits: 0.776 -> 0.897 SROCC.
    bias_correction: bool = True
    # Per-channel weight scales: channels of one convolution differ too much in range for one scale.
    per_channel_weights: bool = True
    # 7-bit ONNX weights (reduce_range): without VNNI, ONNX Runtime sums u8*s8 pairs in saturating int16 and
    # 8-bit weights drifted (SROCC 0.886 against 0.994 for the same QDQ graph unfused, 8-cell C=16 network).
    onnx_weight_bits: int = 7
    # Symmetric weights (zero point 0): zero taps stay zero, which keeps TFLite's re-dilation of kernels exact.
    symmetric_weights: bool = True
    # Asymmetric activations: post-ReLU activations are non-negative and would waste half of a symmetric range.
    symmetric_activations: bool = False
    # uint8 activations in the ONNX file (the same grid, zero point + 128): ONNX Runtime's x86 kernels fused only
    # 333 of 438 int8-activation convolutions of the default AestheticNet* into QLinearConv, all 438 with uint8.
    onnx_uint8_activations: bool = True
    # Quantised ONNX ReLUs as LeakyRelu(alpha=0): ONNX Runtime leaves a ReLU between DequantizeLinear and
    # QuantizeLinear as a float requantisation (60 in the default AestheticNet*, 1.25 ms of its 11 ms), and fuses
    # the LeakyRelu form into QLinearLeakyRelu, an integer table; same function, bit-identical outputs there.
    onnx_relu_as_leaky_relu: bool = True
    # ONNX depthwise convolutions widened with zero channels to a multiple of this (0: off): ONNX Runtime's fast
    # x86 int8 depthwise kernel takes only multiples of 16, and the default AestheticNet*'s 36- and 72-channel
    # ones took 5.6 of its 11 ms int8 run (2.8 after); same function, bit-identical outputs.
    onnx_depthwise_channel_multiple: int = 16
    # TFLite int8 RELUs (output zero point -128) as the int8 QUANTIZE they equal: XNNPACK does not take int8
    # RELU, and 79 of them split the default AestheticNet*'s delegated graph into 60 partitions (8 after).
    tflite_relu_as_requantize: bool = True
    # TFLite average pools in float between int8 conversions: XNNPACK does not take int8 AVERAGE_POOL_2D, and each
    # of the demo model's 12 split its delegated graph and ran in TFLite's own kernel.
    tflite_float_average_pools: bool = True
    # CoreML compresses only weight tensors with at least this many elements (coremltools' own default).
    coreml_weight_threshold: int = 512

    def __post_init__(self) -> None:
        if self.outlier_factor <= 1.0:
            raise ValueError(f"Int8Recipe.outlier_factor must be > 1, got {self.outlier_factor}")
        if not 0.0 <= self.outlier_max_fraction < 1.0:
            raise ValueError(f"Int8Recipe.outlier_max_fraction must be in [0, 1), got {self.outlier_max_fraction}")
        if self.equalize_cap < 1.0:
            raise ValueError(f"Int8Recipe.equalize_cap must be >= 1, got {self.equalize_cap}")
        if self.onnx_depthwise_channel_multiple < 0:
            raise ValueError(
                "Int8Recipe.onnx_depthwise_channel_multiple must be >= 0 (0: off), got "
                f"{self.onnx_depthwise_channel_multiple}"
            )
        if self.onnx_weight_bits not in (7, 8):
            raise ValueError(f"Int8Recipe.onnx_weight_bits must be 7 or 8, got {self.onnx_weight_bits}")

    # ---- the text the manifests carry ----------------------------------------------------------------------
    def outlier_rule(self) -> str:
        return (
            f"left out: images whose largest |activation| on some int8 tensor exceeds {self.outlier_factor:g}x the "
            f"median image's (at most {self.outlier_max_fraction:.0%} of the images"
            + ("; none when more exceed it: a heavy tail, not outliers)" if self.keep_heavy_tails else ")")
        )

    def float_parts(self) -> str:
        named = (
            (self.float_input_prefix, "input normalisation"),
            (self.float_tail, "tail (CBAM, pooling, classifier, softmax)"),
        )
        parts = [name for on, name in named if on]
        return " and ".join(parts) + " in float" if parts else "everything int8"

    def onnx_conversion(self) -> str:
        """The ``export.conversion`` entry of an ONNX int8 manifest."""
        weights = "per-channel" if self.per_channel_weights else "per-tensor"
        if self.onnx_weight_bits == 7:
            weights += " int8 weights with reduce_range (7-bit: no int16 saturation on x86 without VNNI)"
        else:
            weights += " int8 weights"
        calibration = "MinMax calibration (outlier images left out)"
        if self.equalize:
            calibration += (
                " after activation range equalisation (Conv->[Relu]->Conv channel pairs, gain <= "
                f"{self.equalize_cap:g})"
            )
        activations = "int8 activations"
        if self.onnx_uint8_activations:
            activations = "uint8 activations (the int8 grid with zero point + 128)"
        if self.onnx_relu_as_leaky_relu:
            activations += ", quantised ReLUs as LeakyRelu(alpha=0)"
        if self.onnx_depthwise_channel_multiple > 1:
            activations += (
                f", depthwise convolutions widened to multiples of {self.onnx_depthwise_channel_multiple}"
                " channels (zero channels)"
            )
        text = f"onnxruntime.quantization.quantize_static QDQ, {weights}, {activations}, {calibration}; "
        text += self.float_parts()
        return text + (", classifier bias corrected" if self.bias_correction else "")

    def coreml_weights(self) -> str:
        """The ``export.weights`` entry of a CoreML int8 manifest."""
        kind = "symmetric" if self.symmetric_weights else "asymmetric"
        return f"int8 linear {kind} {'per-channel' if self.per_channel_weights else 'per-tensor'}"


DEFAULT_RECIPE = Int8Recipe()
