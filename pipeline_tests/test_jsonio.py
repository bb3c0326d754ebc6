import json
import re

from hypothesis import given
from hypothesis import strategies as st

from pipeline import jsonio

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@given(json_values)
def test_round_trip_is_exact_including_big_integers(value):
    encoded = jsonio.dumps(value)
    assert jsonio.loads(encoded) == value
    assert json.loads(encoded) == value


def test_big_integer_is_not_turned_into_a_float():
    value = jsonio.loads(b'{"n": 123456789012345678901234567890}')
    assert value["n"] == 123456789012345678901234567890
    assert isinstance(value["n"], int)


@given(st.binary(max_size=60) | st.from_regex(rb"[0-9a ]{0,40}", fullmatch=True))
def test_long_digit_runs_are_found_like_a_regex_would(raw):
    assert jsonio.has_long_digit_run(raw) == (re.search(rb"[0-9]{19,}", raw) is not None)


# What an API may send as an escape (``"\ud800"``) parses to a lone surrogate, which has no UTF-8.
texts_with_lone_surrogates = st.text(st.characters(categories=["Cs", "Lu", "Lo", "Nd"]))


@given(
    st.lists(
        texts_with_lone_surrogates | st.integers(min_value=-(10**40), max_value=10**40),
        max_size=4,
    )
)
def test_round_trip_keeps_lone_surrogates(value):
    assert jsonio.loads(jsonio.dumps(value)) == value


def test_a_listing_field_with_an_escaped_lone_surrogate_is_written_back_escaped():
    assert jsonio.dumps(jsonio.loads(b'{"prompt":"\\ud800 x"}')) == b'{"prompt":"\\ud800 x"}'
