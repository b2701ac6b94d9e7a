"""How many SMS a carrier bills for a text (the signature included). Pure Python."""
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")   # each costs an escape plus the character


@dataclass(frozen=True)
class Segments:
    count: int
    encoding: str        # "gsm7" or "ucs2"
    units: int           # septets (GSM-7) or UTF-16 code units (UCS-2)


def sms_segments(text: str) -> Segments:
    """How many SMS a carrier bills for ``text`` (signature included).

    Pure GSM-7 text: 160 septets in one message, 153 per part once split.
    Anything else (Chinese) goes as UCS-2: 70 characters in one, 67 per part.
    A character is never split across parts (an escaped GSM character or a
    UTF-16 surrogate pair moves whole to the next part).
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
        encoding, single, part = "gsm7", 160, 153
    else:
        costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
        encoding, single, part = "ucs2", 70, 67
    units = sum(costs)
    if units <= single:
        return Segments(1 if text else 0, encoding, units)
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return Segments(count, encoding, units)
