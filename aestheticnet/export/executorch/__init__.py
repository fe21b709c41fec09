"""ExecuTorch export: ``.pte`` programs with the XNNPACK delegate (:mod:`.convert`)."""
