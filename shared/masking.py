"""Contacts are shown masked everywhere except ``intake.get_contact``; free text that leaves
its record (an event, a delivery's error, a quote on the notice board) goes through
``mask_text``, the one rule for phone numbers and e-mail addresses people type.

>>> mask_phone("13812345678"), mask_phone("010-62345678")
('138****5678', '010****5678')
>>> mask_email("zhang.san@example.com")
'z***@example.com'
>>> mask_text("电话 +86 139 1234 5601, 邮箱 li@example.com, 2026-11-23 10:00 来修")
'电话 139****5601, 邮箱 l***@example.com, 2026-11-23 10:00 来修'
>>> mask_text(mask_text("13912345601")) == mask_text("13912345601")   # masking masked text
True
"""
import re
import unicodedata
from typing import TypeVar

# Text or None: each mask gives back what it was given, a None as None.
MaybeText = TypeVar("MaybeText", str, None)


def mask_phone(phone: MaybeText) -> MaybeText:
    """13812345678 -> 138****5678; landlines keep the area code and last four. At least
    four digits are hidden: an 8-digit local number shows only its last four."""
    if not phone:
        return phone
    digits = phone.replace(" ", "")
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:min(3, len(digits) - 8)]}****{digits[-4:]}"


def mask_email(email: MaybeText) -> MaybeText:
    """zhang.san@example.com -> z***@example.com"""
    if not email or "@" not in email:
        return email
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_address(address: MaybeText) -> MaybeText:
    return mask_email(address) if "@" in (address or "") else mask_phone(address)


# Free text: generous on purpose, since people type numbers every way ("139 1234 5601",
# "+86-139…", "(010) 6234 5678", full-width digits): a run of 7 or more digits, single
# spaces, dashes or brackets between them, is masked as a phone number. Dates and clock
# times are left alone, and a number stops where one begins ("13912345601 2026-11-23").
_SEPARATOR = r"[ \t\-‐–—－()（）]{1,2}"
_DATE = r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?"
_TIME = r"\d{1,2}[:：]\d{2}(?:[:：]\d{2})?"
_IN_TEXT = re.compile(
    r"(?P<email>(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+[@＠][A-Za-z0-9\-]+(?:[.．][A-Za-z0-9\-]+)+)"
    rf"|(?P<keep>(?<!\d)(?:{_DATE}|{_TIME})(?!\d))"
    rf"|(?P<number>(?<!\d)[+＋]?\d(?:(?:{_SEPARATOR})?(?!{_DATE}|{_TIME})\d)*)")
MIN_NUMBER_DIGITS = 7    # a local landline number; shorter runs are rooms, amounts, years


def _national(digits: str) -> str:
    """A number without the country code: 8613912345601 and 008613912345601 -> 13912345601."""
    for prefix in ("0086", "86"):
        rest = digits[len(prefix):]
        if digits.startswith(prefix) and len(rest) == 11 and rest.startswith("1"):
            return rest
    return digits


def _masked(match: re.Match[str]) -> str:
    if match.group("email"):
        return mask_email(match.group("email").replace("＠", "@"))
    if match.group("keep"):
        return match.group()
    run = match.group()
    digits = "".join(str(unicodedata.decimal(char)) for char in run if char.isdecimal())
    if len(digits) < MIN_NUMBER_DIGITS:
        return run
    return mask_phone(_national(digits))


def mask_text(text: MaybeText) -> MaybeText:
    """``text`` with every phone number and e-mail address in it masked as contacts are
    (138****5678, z***@example.com). Masking masked text changes nothing."""
    if not text:
        return text
    return _IN_TEXT.sub(_masked, str(text))
