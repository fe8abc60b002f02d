"""Profiles are validated data: shipped ones load, mistakes name the file and the field, user YAML works."""

from __future__ import annotations

import copy
from importlib import resources

import pydantic
import pytest
import yaml

from defectscope.errors import ProfileError
from defectscope.inspector import Inspector
from defectscope.profile import Profile, SizeBand, list_profiles, load_profile
from defectscope.records import Status
from defectscope.synth import ScratchSpec, make_scene, render_scene

SHIPPED = ("iec-mm-pc", "iec-sm-apc", "iec-sm-upc")


@pytest.fixture(scope="module")
def upc_data() -> dict:
    text = (resources.files("defectscope") / "profiles" / "iec-sm-upc.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _write(tmp_path, data, name="custom.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(tmp_path, data) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message, "the message must name the file"
    return message


def test_the_three_iec_profiles_are_shipped_and_load():
    assert list_profiles() == list(SHIPPED)
    for name in SHIPPED:
        profile = load_profile(name)
        assert profile.name == name and profile.fiber.cladding_diameter_um == 125
        assert profile.contact_diameter_um == 250
    assert load_profile("iec-mm-pc").fiber.core_diameter_um == 50
    assert load_profile("iec-sm-upc").fiber.core_diameter_um == 9


def test_the_smallest_judged_size_per_zone_follows_the_iec_tables():
    sm, mm = load_profile("iec-sm-upc"), load_profile("iec-mm-pc")
    judged = {z.name: (z.smallest_judged_um("defects"), z.smallest_judged_um("scratches")) for z in sm.zones}
    # A: none allowed; B: < 2 um any, 2-5 um counted; C: no limit; D: < 10 um any
    assert judged == {"A": (0.0, 0.0), "B": (2.0, 3.0), "C": (float("inf"),) * 2, "D": (10.0, float("inf"))}
    # multimode A counts every defect (at most 4 of <= 5 um); D admits any number below 20 um
    assert [z.smallest_judged_um("defects") for z in mm.zones] == [0.0, 5.0, float("inf"), 20.0]


def test_profiles_are_frozen():
    profile = load_profile("iec-sm-upc")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        profile.name = "other"  # type: ignore[misc]


# --- mistakes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, field, suggestion",
    [
        (
            lambda d: d["zones"][0].update(outer_mu=d["zones"][0].pop("outer_um")),
            "zones.0.outer_mu",
            "outer_um",
        ),
        (lambda d: d.update(zone=d.pop("zones")), "zone", "zones"),
        (lambda d: d.update(detection={"region": {"k_sigmaa": 5}}), "detection.region.k_sigmaa", "k_sigma"),
        (lambda d: d.update(quality={"max_edge_width": 5}), "quality.max_edge_width", "max_edge_width_um"),
        (lambda d: d["fiber"].update(cladding_diam_um=125), "fiber.cladding_diam_um", "cladding_diameter_um"),
    ],
    ids=["zone-key", "top-key", "detector-key", "quality-key", "fiber-key"],
)
def test_unknown_key_names_the_field_and_suggests_the_close_match(
    tmp_path, upc_data, mutate, field, suggestion
):
    data = copy.deepcopy(upc_data)
    mutate(data)
    message = _error(tmp_path, data)
    assert f"field {field}: unknown field (did you mean {suggestion!r}?)" in message


def test_unknown_key_in_a_size_band_suggests_the_close_match(tmp_path, upc_data):
    data = copy.deepcopy(upc_data)
    band = data["zones"][1]["scratches"][0]
    band["upto_um"] = band.pop("up_to_um")
    message = _error(tmp_path, data)
    assert "field zones.1.scratches.0.upto_um: unknown field (did you mean 'up_to_um'?)" in message


@pytest.mark.parametrize("outer_um", [20, 25])
def test_zone_outer_not_beyond_inner_is_refused(tmp_path, upc_data, outer_um):
    data = copy.deepcopy(upc_data)
    data["zones"][1]["outer_um"] = outer_um
    message = _error(tmp_path, data)
    assert "field zones.1" in message and "zone B: outer_um" in message
    assert "must exceed inner_um (25" in message


def test_non_contiguous_zones_are_refused(tmp_path, upc_data):
    data = copy.deepcopy(upc_data)
    data["zones"][2]["inner_um"] = 120
    message = _error(tmp_path, data)
    assert "contiguous" in message and "zone B ends at 115" in message and "zone C starts at 120" in message


def test_zones_out_of_order_are_refused(tmp_path, upc_data):
    data = copy.deepcopy(upc_data)
    data["zones"].reverse()
    assert "ordered from the centre" in _error(tmp_path, data)


def test_duplicate_zone_names_are_refused(tmp_path, upc_data):
    data = copy.deepcopy(upc_data)
    data["zones"][1]["name"] = "A"
    assert "zone names must be unique" in _error(tmp_path, data)


def test_bands_out_of_order_are_refused(tmp_path, upc_data):
    data = copy.deepcopy(upc_data)
    data["zones"][1]["defects"] = [{"up_to_um": 5, "max_count": 5}, {"below_um": 2}]
    message = _error(tmp_path, data)
    assert "field zones.1" in message
    assert "zone B: defects bands must be listed smallest limit first" in message


@pytest.mark.parametrize("band", [{"below_um": 2, "up_to_um": 5}, {"max_count": 3}], ids=["both", "neither"])
def test_band_needs_exactly_one_of_below_um_and_up_to_um(tmp_path, upc_data, band):
    data = copy.deepcopy(upc_data)
    data["zones"][1]["defects"] = [band]
    message = _error(tmp_path, data)
    assert "zones.1.defects" in message and "give exactly one of below_um" in message
    with pytest.raises(ValueError, match="exactly one"):
        SizeBand(**band)


def test_band_limits_must_be_positive(tmp_path, upc_data):
    data = copy.deepcopy(upc_data)
    data["zones"][1]["defects"] = [{"up_to_um": 0}]
    assert "zones.1.defects" in _error(tmp_path, data)


def test_missing_zones_is_refused(tmp_path, upc_data):
    data = copy.deepcopy(upc_data)
    del data["zones"]
    assert "field zones: Field required" in _error(tmp_path, data)


def test_invalid_yaml_is_a_profile_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nzones: [ {name: A, inner_um: 0\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="not valid YAML") as info:
        load_profile(path)
    assert str(path) in str(info.value)


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- A\n- B\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="expected a mapping"):
        load_profile(path)


def test_unreadable_profile_path_is_a_profile_error(tmp_path):
    with pytest.raises(ProfileError, match="cannot read it"):
        load_profile(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize(
    "name, close", [("iec-sm-upx", "iec-sm-upc"), ("sm-apc", "iec-sm-apc"), ("iec-mm", "iec-mm-pc")]
)
def test_unknown_profile_name_suggests_a_close_one_and_lists_the_shipped(name, close):
    with pytest.raises(ProfileError) as info:
        load_profile(name)
    message = str(info.value)
    assert f"unknown profile {name!r}" in message and f"Did you mean {close!r}?" in message
    assert all(s in message for s in SHIPPED) and "YAML" in message


def test_unknown_profile_name_without_a_close_match_still_lists_the_shipped():
    with pytest.raises(ProfileError) as info:
        load_profile("telecom")
    assert "Did you mean" not in str(info.value) and "iec-sm-upc" in str(info.value)


# --- a user profile, end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenient_profile_path(tmp_path_factory, upc_data):
    """A customer variant: zone B tolerates scratches up to 5 um wide (the IEC table says 3)."""
    data = copy.deepcopy(upc_data)
    data["name"] = "customer-lenient-b"
    data["title"] = "Customer X, relaxed cladding scratches"
    data["zones"][1]["scratches"] = [{"up_to_um": 5}]
    return _write(tmp_path_factory.mktemp("profiles"), data, "customer-lenient-b.yml")


def test_user_yaml_profile_loads_from_its_path(lenient_profile_path):
    profile = load_profile(lenient_profile_path)
    assert isinstance(profile, Profile) and profile.name == "customer-lenient-b"
    assert profile.zones[1].scratches[0].up_to_um == 5


def test_user_yaml_profile_zone_table_is_used_end_to_end(lenient_profile_path):
    scene = make_scene(
        "iec-sm-upc",
        um_per_px=0.45,
        width=600,
        height=600,
        seed=8,
        defects=[ScratchSpec.chord(distance_um=40, angle_deg=30, half_length_um=15, width_um=4.0)],
    )
    pixels = render_scene(scene).pixels
    iec = Inspector.from_profile("iec-sm-upc").inspect(pixels)
    assert iec.verdict.status == Status.FAIL and "zone B" in iec.verdict.reasons[0]
    custom = Inspector.from_profile(lenient_profile_path).inspect(pixels)
    assert custom.profile == "customer-lenient-b"
    assert custom.verdict.status == Status.PASS, custom.verdict.reasons
    assert [d.kind.value for d in custom.defects] == ["scratch"]
