"""Saved JSON read with limits (appliance.documents.jsonlimits): size and depth refused in German, naming both
the file and the limit; Python's RecursionError never escapes."""

from __future__ import annotations

import pytest

from appliance.documents import DocumentError, jsonlimits


def test_valid_json_and_a_bom():
    assert jsonlimits.loads(b'{"a": [1, {"b": 2}]}', "x.json") == {"a": [1, {"b": 2}]}
    assert jsonlimits.loads('\ufeff{"a": "Groß"}'.encode(), "x.json") == {"a": "Groß"}


@pytest.mark.parametrize(("data", "words"), [
    (b"[" * 100_000 + b"]" * 100_000, ("x.json", "zu tief verschachtelt", "höchstens 64 Ebenen")),
    (b"[" * 65 + b"]" * 65, ("zu tief verschachtelt",)),
    (b'"' + b"a" * (9 << 20) + b'"', ("x.json", "zu groß", "höchstens 8 MB")),
    (b'{"a": }', ("kein gültiges JSON", "Zeile 1, Spalte 7")),
    ('{"a": "Groß"}'.encode("cp1252"), ("nicht UTF-8",)),
])
def test_refusals_name_file_and_limit(data, words):
    with pytest.raises(DocumentError) as err:
        jsonlimits.loads(data, "x.json")
    for word in words:
        assert word in str(err.value)


def test_depth_is_counted_without_recursion():
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    assert jsonlimits.depth(deep, limit=10_000_000) == 10_001
    assert jsonlimits.depth({"a": [1, {"b": []}]}) == 4
    assert jsonlimits.depth("text") == 0
    assert jsonlimits.depth([[[]]] * 3, limit=64) == 3
