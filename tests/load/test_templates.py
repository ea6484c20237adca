"""Path and body templates: placeholders filled from records, JSON braces literal, unknown names refused."""

from __future__ import annotations

import pytest

from capacity.core.errors import CapacityError
from capacity.load.templates import compile_template
from capacity.plan.testdata import FIELDS, Record


def test_path_rendered_from_a_record() -> None:
    t = compile_template("/stations/{sta3n}/patients/{dfn}", allowed=FIELDS, where="endpoint 'p' path")
    assert not t.is_constant and t.fields == ("sta3n", "dfn")
    assert t.render(Record("442", "100001", "1000000", "120").as_dict()) == "/stations/442/patients/100001"


def test_json_body_braces_stay_literal() -> None:
    t = compile_template('{"appointment": "{ien}", "meta": {"clinic": {clinic}}}', allowed=FIELDS, where="b")
    assert t.fields == ("ien", "clinic")
    assert t.render({"ien": "7", "clinic": "300"}) == '{"appointment": "7", "meta": {"clinic": 300}}'


def test_constant_template_renders_itself() -> None:
    t = compile_template("/health", allowed=(), where="endpoint 'h' path")
    assert t.is_constant and t.render({}) == "/health"


def test_unknown_placeholder_names_where_and_what_is_known() -> None:
    with pytest.raises(CapacityError) as exc:
        compile_template("/a/{patient}", allowed=FIELDS, where="endpoint 'a' path")
    msg = str(exc.value)
    assert msg.startswith("endpoint 'a' path: unknown placeholder {patient}")
    assert "{sta3n}, {dfn}, {ien}, {clinic}" in msg


def test_placeholder_without_test_data_says_so() -> None:
    with pytest.raises(CapacityError, match=r"test_data\.source is 'none'"):
        compile_template("/a/{ien}", allowed=(), where="endpoint 'a' path")
