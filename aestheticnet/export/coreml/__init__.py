"""CoreML export: torch.export -> ML program (.mlpackage); spec checks that run without macOS."""
