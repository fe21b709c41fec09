"""TFLite export: ONNX -> onnx2tf -> TFLite converter, one file per precision, exact flatbuffer rewrites."""
