"""The one rate of every statistic (complaints closed, revisits on time, surveys returned,
owners satisfied): a part of a whole, rounded to four places, None when there is no whole.

>>> rate(6, 7)          # 85.71 %
0.8571
>>> rate(3, 4)
0.75
>>> rate(0, 0) is None  # nothing to count: no rate, not 0 %
True
"""


def rate(part: float, whole: float) -> float | None:
    """``part`` ÷ ``whole`` rounded to four places (0.8571 is 85.71 %); None when ``whole``
    is 0."""
    return round(part / whole, 4) if whole else None
