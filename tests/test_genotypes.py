import json
from pathlib import Path

import pytest

from aestheticnet.nas.genotypes import (
    Genotype,
    GenotypeError,
    get_genotype,
    list_genotypes,
    register_genotype,
    resolve_genotype,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["DARTS_V1", "DARTS_V2", "PDARTS"])
def test_published_genotypes_round_trip_json(name, tmp_path):
    g = get_genotype(name)
    assert Genotype.from_json(g.to_json()) == g
    path = tmp_path / "g.json"
    g.save(path)
    assert Genotype.load(path) == g
    assert resolve_genotype(str(path)) == g
    assert g.steps == 4


def test_registry_lists_published_cells_and_refuses_duplicates():
    assert {"DARTS_V1", "DARTS_V2", "PDARTS"} <= set(list_genotypes())
    with pytest.raises(ValueError, match="already registered"):
        register_genotype("PDARTS", get_genotype("DARTS_V2"))


def test_unknown_genotype_name_lists_registered():
    with pytest.raises(GenotypeError, match="unknown genotype 'NASNET'.*DARTS_V2"):
        get_genotype("NASNET")


def _dict(**changes):
    d = get_genotype("DARTS_V2").to_dict()
    d.update(changes)
    return d


def test_bad_op_is_named():
    d = _dict()
    d["normal"][3] = ["conv_7x1_1x7", 1]
    with pytest.raises(GenotypeError, match=r"normal\[3\] has unknown op 'conv_7x1_1x7'"):
        Genotype.from_dict(d)


def test_none_is_not_a_final_op():
    d = _dict()
    d["reduce"][0] = ["none", 0]
    with pytest.raises(GenotypeError, match=r"reduce\[0\].*'none'"):
        Genotype.from_dict(d)


def test_bad_input_index_is_named():
    d = _dict()
    d["normal"][2] = ["sep_conv_3x3", 3]  # node 3 may only use 0..2
    with pytest.raises(GenotypeError, match=r"normal\[2\].*input index 3.*node 3 may only take inputs 0..2"):
        Genotype.from_dict(d)


def test_bad_concat_and_odd_edge_count():
    with pytest.raises(GenotypeError, match="normal_concat has node 7"):
        Genotype.from_dict(_dict(normal_concat=[2, 3, 7]))
    d = _dict()
    d["normal"] = d["normal"][:3]
    with pytest.raises(GenotypeError, match="two edges per intermediate node"):
        Genotype.from_dict(d)


def test_malformed_json_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"normal": [["sep_conv_3x3", 0]')
    with pytest.raises(GenotypeError, match="broken.json: not valid JSON"):
        Genotype.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"normal": [], "extra": 1}))
    with pytest.raises(GenotypeError, match="wrong.json: genotype is missing"):
        Genotype.load(wrong)
    with pytest.raises(GenotypeError, match="cannot read genotype file"):
        Genotype.load(tmp_path / "absent.json")


def test_every_registered_genotype_says_how_it_was_found():
    from aestheticnet.nas import genotype_origin

    for name in list_genotypes():
        origin = genotype_origin(name)
        assert origin is not None and origin.method in ("published", "search") and origin.reference, name
        if origin.method == "search":  # enough to run the search again
            assert origin.preset and origin.data and origin.seed is not None, name
    searched = genotype_origin("LATENCY_EPYC_W2")
    assert searched.latency_weight == 2.0 and "bench ops" in searched.latency_table
    assert (ROOT / searched.latency_table.split(" ")[0]).is_file()
    with pytest.raises(GenotypeError, match="unknown genotype 'NOPE'"):
        genotype_origin("NOPE")


def test_latency_searched_genotype_rebuilds_by_name():
    from aestheticnet.models import create_model

    net = create_model("aestheticnet_star", genotype="LATENCY_EPYC_W2", layers=5, init_channels=8)
    assert net.genotype == get_genotype("LATENCY_EPYC_W2")
    assert ("dil_conv_3x3", 0) in net.genotype.normal and ("sep_conv_5x5", 0) in net.genotype.reduce


def test_pool_searched_genotypes_are_the_ones_the_comparison_trained():
    from aestheticnet.nas import genotype_origin

    result = json.loads((ROOT / "results" / "accuracy_latency.json").read_text())
    row = next(r for r in result["rows"] if r["name"] == "star_searched")
    assert sorted(row["options"]["genotypes"]) == ["0", "1", "2"]
    for seed, found in row["options"]["genotypes"].items():
        assert get_genotype(f"POOL_SEED{seed}") == Genotype.from_dict(found), seed
        assert genotype_origin(f"POOL_SEED{seed}").seed == int(seed)
