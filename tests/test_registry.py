"""The one Registry class behind genotypes and model variants."""

import pytest

from aestheticnet.models.registry import MODELS
from aestheticnet.nas.genotypes import GENOTYPES, GenotypeError
from aestheticnet.registry import Registry


def test_registry_refuses_duplicates_and_names_valid_keys():
    reg: Registry[int] = Registry("colour", LookupError)
    reg.register("red", 1)
    reg.register("blue", 2)
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        reg.register("red", 3)
    with pytest.raises(LookupError, match="unknown colour 'green'; registered: blue, red"):
        reg.get("green")
    assert reg.names() == ["blue", "red"] and "red" in reg and len(reg) == 2 and list(reg) == ["blue", "red"]


def test_genotypes_and_model_variants_use_it():
    assert isinstance(GENOTYPES, Registry) and isinstance(MODELS, Registry)
    assert {"DARTS_V1", "DARTS_V2", "PDARTS"} <= set(GENOTYPES.names())
    with pytest.raises(GenotypeError):
        GENOTYPES.get("NASNET")
    with pytest.raises(ValueError, match="already registered"):
        MODELS.register("aestheticnet", MODELS.get("aestheticnet"))
