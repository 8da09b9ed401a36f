"""Merging class lists: old ids never move, new names are appended once."""

from __future__ import annotations

import pytest

from imagerec.training.incremental.classes import merge_classes


def test_new_names_are_appended_after_the_old_in_the_new_datasets_order():
    merge = merge_classes(["square", "circle"], ["diamond", "circle", "cross"])
    assert merge.names == ["square", "circle", "diamond", "cross"]
    assert merge.old_count == 2
    assert merge.new_to_merged == [2, 1, 3]
    assert merge.added == ["diamond", "cross"]
    assert merge.extended == ["circle"]


def test_names_match_case_sensitively():
    merge = merge_classes(["cat"], ["Cat"])
    assert merge.names == ["cat", "Cat"]
    assert merge.extended == []


def test_only_old_classes_gives_an_identity_mapping_and_adds_nothing():
    merge = merge_classes(["a", "b", "c"], ["c", "a"])
    assert merge.names == ["a", "b", "c"]
    assert merge.new_to_merged == [2, 0]
    assert merge.added == []


def test_map_for_maps_any_datasets_names_and_names_an_unknown_class():
    merge = merge_classes(["square", "circle"], ["cross"])
    assert merge.map_for(["cross", "square"]) == [2, 0]
    with pytest.raises(ValueError, match="'hexagon'"):
        merge.map_for(["square", "hexagon"])


@pytest.mark.parametrize(("old", "new"), [(["a", "a"], ["b"]), (["a"], ["b", "c", "b"])])
def test_duplicate_names_in_either_input_are_refused(old, new):
    with pytest.raises(ValueError, match="more than once"):
        merge_classes(old, new)
