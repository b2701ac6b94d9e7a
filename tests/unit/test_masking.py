"""The one masking rule: contacts in results, and free text that leaves its record."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.masking import mask_email, mask_phone, mask_text


@pytest.mark.parametrize("phone, masked", [
    ("13812345678", "138****5678"), ("021-64301234", "021****1234"),
    ("62345678", "****5678"), ("6234567", "*******"), ("", ""), (None, None),
])
def test_a_contact_shows_at_most_three_and_four_digits_and_hides_four(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize("typed, masked", [
    ("业主来电 13912345601 仍停水，邮件 owner1@example.cn",
     "业主来电 139****5601 仍停水，邮件 o***@example.cn"),
    ("+86 139 1234 5601", "139****5601"),
    ("+86-139-1234-5601", "139****5601"),
    ("0086 13912345601", "139****5601"),
    ("电话13912345601谢谢", "电话139****5601谢谢"),
    ("１３９１２３４５６０１", "139****5601"),                 # full-width digits
    ("010-62345678转123", "010****5678转123"),
    ("(010) 6234 5678", "(010****5678"),
    ("座机 6234567", "座机 *******"),
    ("13912345601@qq.com", "1***@qq.com"),
    ("Zhang.San+hf@mail.example.com", "Z***@mail.example.com"),
    ("owner＠example.cn", "o***@example.cn"),
])
def test_numbers_and_addresses_are_masked_however_they_are_typed(typed, masked):
    assert mask_text(typed) == masked


@pytest.mark.parametrize("text", [
    "2026-11-23 10:00 来电", "2026年11月23日", "3栋1单元502室", "已等候 72 小时",
    "reply overdue since 2026-11-25T02:00:00.123000+00:00", "费用 1200.50 元", "",
])
def test_dates_times_rooms_and_amounts_stay(text):
    assert mask_text(text) == text


def test_a_number_stops_where_a_date_begins():
    assert mask_text("13912345601 2026-11-23 10:00") == "139****5601 2026-11-23 10:00"


@given(st.text())
def test_masking_masked_text_changes_nothing(text):
    assert mask_text(mask_text(text)) == mask_text(text)


def test_an_address_keeps_its_domain():
    assert mask_email("zhang.san@example.com") == "z***@example.com"
