"""Profiling and benchmarking: params and MACs (profile, breakdown), latency and memory of model files on this
machine or on a device over SSH (runner, devices, ssh, harness), and reports (report). ``aestheticnet bench`` lives in
:mod:`aestheticnet.cli.bench`."""
