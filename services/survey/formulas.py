"""The survey's figures, one formula each: response rate, satisfaction rate, score, and the
Wilson interval rankings use. Pure Python.

「调查表的回收份数、总的满意率以及分项满意率」.
"""
import math

from shared.rates import rate

SATISFIED_ANSWERS = (4, 5)
WILSON_Z = 1.959964          # two-sided 95 %


def response_rate(returned: int, invited: int) -> float | None:
    """「调查表的回收份数」 against those issued: returned ÷ invited, None if nobody was invited."""
    return rate(returned, invited)


def satisfaction_rate(satisfied: int, answered: int) -> float | None:
    """Satisfaction rate = answers of 4 or 5 ÷ answers given (N/A excluded)."""
    return rate(satisfied, answered)


def score(score_sum: float, answered: int) -> float | None:
    """Score = mean of answer × 20. (100 points, one decimal; None if unanswered)"""
    return round(score_sum / answered * 20, 1) if answered else None


def wilson_interval(rate: float, n: int,
                    z: float = WILSON_Z) -> tuple[float, float] | tuple[None, None]:
    """The 95 % Wilson score interval of a proportion ``rate`` observed over ``n``.

    Unlike rate ± z·se it stays inside [0, 1] and is wide for small n: 3 of 3
    satisfied gives (0.44, 1.0), 300 of 300 gives (0.99, 1.0).
    """
    if not n:
        return None, None
    centre = rate + z * z / (2 * n)
    spread = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (round(max(0.0, (centre - spread) / denominator), 4),
            round(min(1.0, (centre + spread) / denominator), 4))
