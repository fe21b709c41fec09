"""ONNX export: the dynamo route with dynamic shapes, fp16 and int8 variants, exact graph rewrites."""
