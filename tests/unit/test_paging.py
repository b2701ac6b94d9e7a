"""shared/paging.py: the cursor round-trips, garbage is InvalidInput on cursor, pages are exact."""
import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import paging
from shared.embedded import new_client
from shared.errors import InvalidInput
from shared.paging import ASCENDING, DESCENDING, decode_cursor, encode_cursor, find_page
from shared.store import estate_scope

NEWEST_FIRST = [("at", DESCENDING)]
keys = st.one_of(
    st.text(max_size=40), st.integers(-(2 ** 63), 2 ** 63 - 1), st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(UTC)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def refused(cursor, sort=NEWEST_FIRST):
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(sort, cursor)
    assert caught.value.errors == {"cursor": ["not a valid cursor"]}
    with pytest.raises(InvalidInput) as caught:      # the RPC filter field refuses it too
        paging.load_filters(Filters(), {"cursor": cursor, "limit": 5}, True)
        decode_cursor(sort, cursor)                  # well-formed, but not for this list
    # (text that is not clean text at all is refused before it is read as a cursor)
    assert list(caught.value.errors) == ["cursor"]


class Filters(paging.ListFilters):
    limit = paging.Limit(50)


# the cursor ------------------------------------------------------------------------

@given(st.lists(keys, min_size=1, max_size=4), st.lists(st.booleans(), min_size=4, max_size=4))
def test_a_cursor_gives_back_the_values_it_was_made_of(values, ascending):
    sort = [(f"k{n}", ASCENDING if up else DESCENDING)
            for n, up in zip(range(len(values) - 1), ascending, strict=False)]
    cursor = encode_cursor(sort, values)
    assert cursor.isascii() and "=" not in cursor and len(cursor) <= paging.MAX_CURSOR_LENGTH
    decoded = decode_cursor(sort, cursor)
    assert decoded == values
    assert [type(value) for value in decoded] == [type(value) for value in values]


def test_times_keep_their_microseconds_and_come_back_in_utc():
    moment = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC) + timedelta(hours=-8)
    [back, _] = decode_cursor(NEWEST_FIRST, encode_cursor(NEWEST_FIRST, [moment, "c-1"]))
    assert back == moment and back.utcoffset() == timedelta(0)


@settings(max_examples=300)
@given(st.text(max_size=3000))
def test_any_text_is_a_cursor_or_invalid_input(text):
    refused(text)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_base64_of_anything_is_refused(data):
    refused(b64(data))


@settings(max_examples=300)
@given(json_values)
def test_json_of_the_wrong_shape_is_refused(value):
    refused(b64(json.dumps(value).encode()))


@pytest.mark.parametrize("cursor", [
    None, 17, ["abc"], {"cursor": "x"}, "", "é", "中文游标", "a b", "abc=", "AAAA" * 1000,
    b64(b"[" * 1500), b64(b"NaN"), b64(b'["0123456789abcdef",[NaN]]'),
    b64(b'["0123456789abcdef",[{"d":1e400}]]'), b64(b'["0123456789abcdef",[{"d":true}]]'),
    b64(b'["0123456789abcdef",[{"d":99999999999999999999999}]]'),
    b64(b'["0123456789abcdef",[null]]'), b64(b'["0123456789abcdef",[]]'),
    b64(b'["0123456789abcdef",[{"$gt":""},"x"]]'), b64("[\"\udcff\"]".encode(errors="surrogatepass")),
])
def test_garbage_is_invalid_input_on_cursor(cursor):
    refused(cursor)


def test_a_tampered_cursor_or_one_of_another_list_is_refused():
    cursor = encode_cursor(NEWEST_FIRST, [datetime(2026, 1, 1, tzinfo=UTC), "c-1"])
    check, values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    refused(b64(json.dumps([check, [values[0], "c-2"]]).encode()))          # another position
    refused(b64(json.dumps([check, ["2026-01-01", "c-1"]]).encode()))       # another type
    refused(cursor, sort=[("at", ASCENDING)])                               # another order
    refused(cursor, sort=[("due_at", DESCENDING)])                          # another list
    refused(cursor[:-2])


# pages -----------------------------------------------------------------------------

T0 = datetime(2026, 5, 1, tzinfo=UTC)
documents = st.lists(
    st.fixed_dictionaries({"_id": st.text("abcxyz0", min_size=1, max_size=4),
                           "at": st.integers(0, 3).map(lambda hour: T0 + timedelta(hours=hour)),
                           "rank": st.integers(0, 2)}),
    max_size=25, unique_by=lambda document: document["_id"])


def expected_order(docs, sort):
    order = paging.total_order(sort)
    for field, direction in reversed(order):         # stable sorts, last key first
        docs = sorted(docs, key=lambda document, field=field: document[field],
                      reverse=direction == DESCENDING)
    return [document["_id"] for document in docs]


def walk(collection, sort, limit, query=None):
    seen, cursor = [], None
    for _ in range(100):                      # a cursor that never ends fails, not hangs
        page, cursor = find_page(collection, query or {}, sort, limit, cursor)
        seen += [document["_id"] for document in page]
        if cursor is None:
            return seen
        assert len(page) == limit
    raise AssertionError("the pages never end")


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(documents, st.integers(1, 7), st.sampled_from([
    [("at", DESCENDING)], [("at", ASCENDING)], [("rank", ASCENDING), ("at", DESCENDING)],
    [("_id", ASCENDING)], [("rank", DESCENDING), ("_id", ASCENDING), ("at", ASCENDING)],
]))
def test_walking_the_pages_gives_every_document_once_in_order(docs, limit, sort):
    collection = new_client()["test"]["things"]
    if docs:
        collection.insert_many([dict(document) for document in docs])
    assert walk(collection, sort, limit) == expected_order(docs, sort)


def test_the_last_page_has_no_cursor_even_when_it_is_full():
    collection = new_client()["test"]["things"]
    collection.insert_many([{"_id": f"t-{n}", "at": T0} for n in range(6)])
    page, cursor = find_page(collection, {}, NEWEST_FIRST, 3)
    assert [d["_id"] for d in page] == ["t-5", "t-4", "t-3"] and cursor is not None
    page, cursor = find_page(collection, {}, NEWEST_FIRST, 3, cursor)
    assert [d["_id"] for d in page] == ["t-2", "t-1", "t-0"] and cursor is None
    assert find_page(collection, {}, NEWEST_FIRST, None) == (
        list(collection.find().sort([("at", -1), ("_id", -1)])), None)


def test_a_document_inserted_before_the_cursor_moves_nothing():
    collection = new_client()["test"]["things"]
    collection.insert_many([{"_id": f"t-{n}", "at": T0 + timedelta(hours=n % 3)}
                            for n in range(9)])
    before = walk(collection, NEWEST_FIRST, 100)
    page, cursor = find_page(collection, {}, NEWEST_FIRST, 4)
    collection.insert_one({"_id": "t-new", "at": T0 + timedelta(days=1)})   # newest: page one
    collection.insert_one({"_id": "t-0a", "at": T0})                          # among the last
    rest, _ = find_page(collection, {}, NEWEST_FIRST, 100, cursor)
    assert [d["_id"] for d in page] == before[:4]
    assert [d["_id"] for d in rest] == [i for i in before[4:] if i != "t-0"] + ["t-0a", "t-0"]


def test_the_next_page_starts_at_the_cursor_not_at_a_skip():
    collection = new_client()["test"]["things"]
    collection.insert_many([{"_id": f"t-{n}", "at": T0 + timedelta(hours=n)} for n in range(5)])
    _, cursor = find_page(collection, {}, NEWEST_FIRST, 2)
    query = {"$and": [{}, paging._after(paging.total_order(NEWEST_FIRST),
                                         decode_cursor(NEWEST_FIRST, cursor))]}
    assert query["$and"][1]["at"] == {"$lte": T0 + timedelta(hours=3)}   # the index bound
    assert "$or" in query["$and"][1]


def test_the_embedded_id_lookup_still_answers_pages():
    collection = new_client()["test"]["things"]
    collection.insert_many([{"_id": "a", "at": T0}, {"_id": "b", "at": T0}])
    assert find_page(collection, {"_id": "a"}, NEWEST_FIRST, 1) == (
        [{"_id": "a", "at": T0}], None)
    _, cursor = find_page(collection, {}, [("_id", ASCENDING)], 1)
    assert find_page(collection, {"_id": "a"}, [("_id", ASCENDING)], 1, cursor) == ([], None)
    assert find_page(collection, {"_id": "b"}, [("_id", ASCENDING)], 1, cursor)[0] == [
        {"_id": "b", "at": T0}]


# the RPC side ------------------------------------------------------------------------

def test_list_filters_page_size_and_cursor_rules():
    assert paging.load_filters(Filters(), None, False) == {"limit": None}
    assert paging.load_filters(Filters(), {}, True) == {"limit": paging.DEFAULT_PAGE_SIZE}
    assert paging.load_filters(Filters(), {"cursor": None}, True) == {
        "limit": paging.DEFAULT_PAGE_SIZE}
    cursor = encode_cursor(NEWEST_FIRST, [T0, "x"])
    assert paging.load_filters(Filters(), {"cursor": cursor, "limit": 7}, True) == {
        "cursor": cursor, "limit": 7}
    for filters, paged, field in [({"cursor": cursor}, False, "cursor"), ({}, "yes", "paged"),
                                  ({"limit": 0}, True, "limit"), ({"limit": 51}, True, "limit"),
                                  ({"limit": "5"}, True, "limit"),
                                  ({"cursor": {"$gt": ""}}, True, "cursor.$gt")]:
        with pytest.raises(InvalidInput) as caught:
            paging.load_filters(Filters(), filters, paged)
        assert list(caught.value.errors) == [field]
    assert paging.answer([1], None, False) == [1]
    assert paging.answer([1], "c", True) == {"items": [1], "next_cursor": "c"}


def test_estate_scope_is_the_intersection():
    assert estate_scope({}) == {}
    assert estate_scope({"estate_id": "e1"}) == {"estate_id": "e1"}
    assert estate_scope({"estate_ids": ["e1", "e2"]}) == {"estate_id": {"$in": ["e1", "e2"]}}
    assert estate_scope({"estate_id": "e1", "estate_ids": ["e1", "e2"]}) == {"estate_id": "e1"}
    assert estate_scope({"estate_id": "e3", "estate_ids": ["e1"]}) == {"estate_id": {"$in": []}}
    assert estate_scope({"estate_ids": ["e1"]}, "estate_ids") == {"estate_ids": {"$in": ["e1"]}}
