"""Revisit statistics per estate and period, and across estates. Pure Python.

Each kind's revisit rate is measured against what it requires: complaints all
(「投诉时间的回访率要求达到100%」), sampled work orders the month's quota
(「维修服务,特约服务和求助服务的回访率要求分别为」 the volume table, or the estate's policy),
routine visits every occupied household a year (「以达到年回访率100%的目标」). A revisit belongs to the period its source fell in (the
closing, the completion, the planned month); cancelled ones (a complaint reopened
before its visit) are not owed.
"""

from shared.schemas.vocabulary import REVISIT_KINDS, UNSATISFIED_LEVELS

SATISFIED_LEVELS = ("very_satisfied", "satisfied")
WORK_ORDER_KINDS = ("repair", "special_service", "assistance", "community_activity",
                    "other_service")


def rate(part, whole):
    return round(part / whole, 4) if whole else None


def revisit_stats(revisits, work_orders, quota_for, now):
    """Statistics of ``revisits`` and sampled ``work_orders`` (already cut to the period).

    ``quota_for(estate_id)`` gives the estate's ``policy.quota``.
    """
    kinds = {kind: _kind_stats(kind, [r for r in revisits if r["kind"] == kind], now)
             for kind in REVISIT_KINDS}
    for kind in WORK_ORDER_KINDS:
        kinds[kind].update(_sampling_stats(
            kind, [o for o in work_orders if o["kind"] == kind],
            [r for r in revisits if r["kind"] == kind], quota_for))
    routine = kinds["routine"]
    routine["required"] = routine["owed"]
    routine["revisit_rate"] = rate(routine["done"], routine["owed"])
    complaints = kinds["complaint"]
    complaints["required"] = complaints["owed"]
    complaints["revisit_rate"] = rate(complaints["done"], complaints["owed"])

    owed = [r for r in revisits if r["status"] != "cancelled"]
    done = [r for r in owed if r["status"] == "done"]
    reached = [r for r in done if (r.get("outcome") or {}).get("reached")]
    rated = [r for r in reached if r["outcome"].get("satisfaction")]
    promised = [r for r in owed if r.get("promised_reply_at")]
    return {
        "complaints_closed": complaints["owed"],
        "complaint_revisits_done": complaints["done"],
        "revisit_rate": complaints["revisit_rate"],
        "revisits": len(owed),
        "done": len(done),
        "on_time_rate": rate(sum(1 for r in done if _on_time(r)), len(done)),
        "reach_rate": rate(len(reached), len(done)),
        "satisfaction_rate": rate(
            sum(1 for r in rated if r["outcome"]["satisfaction"] in SATISFIED_LEVELS), len(rated)),
        "overdue": sum(1 for r in owed if _late_and_open(r, now)),
        "promised_replies": {
            "promised": len(promised),
            "given": sum(1 for r in promised if r.get("reply_given_at")),
            "given_on_time": sum(1 for r in promised if r.get("reply_given_at")
                                 and r["reply_given_at"] <= r["promised_reply_at"]),
            "overdue": sum(1 for r in promised if not r.get("reply_given_at")
                           and r["promised_reply_at"] < now),
        },
        "kinds": kinds,
    }


def _kind_stats(kind, revisits, now):
    owed = [r for r in revisits if r["status"] != "cancelled"]
    done = [r for r in owed if r["status"] == "done"]
    reached = [r for r in done if (r.get("outcome") or {}).get("reached")]
    rated = [r for r in reached if r["outcome"].get("satisfaction")]
    return {
        "owed": len(owed),
        "done": len(done),
        "on_time": sum(1 for r in done if _on_time(r)),
        "on_time_rate": rate(sum(1 for r in done if _on_time(r)), len(done)),
        "reach_rate": rate(len(reached), len(done)),
        "satisfaction_rate": rate(
            sum(1 for r in rated if r["outcome"]["satisfaction"] in SATISFIED_LEVELS), len(rated)),
        "unsatisfied": sum(1 for r in rated if r["outcome"]["satisfaction"] in UNSATISFIED_LEVELS),
        "overdue": sum(1 for r in owed if _late_and_open(r, now)),
        "cancelled": len(revisits) - len(owed),
    }


def _sampling_stats(kind, orders, revisits, quota_for):
    """Orders, what the quota required of each estate's months, what was selected, and how
    many selected orders had a visit done (the revisit rate against the requirement)."""
    population = {}
    for order in orders:
        if order.get("in_population"):
            key = (order["estate_id"], order["month"])
            population[key] = population.get(key, 0) + 1
    required = sum(min(quota_for(estate_id)(kind, count), count)
                   for (estate_id, _), count in population.items())
    revisited = {r["source_id"] for r in revisits if r["status"] == "done"}
    selected = [o for o in orders if o.get("selected")]
    return {
        "orders": sum(population.values()),
        "required": required,
        "sampled": sum(1 for o in selected if o.get("in_population")),
        "top_up": sum(1 for o in selected if o.get("reason") == "top_up"),
        "revisited_orders": len(revisited),
        "revisit_rate": rate(len(revisited), required),
    }


def _on_time(revisit):
    return revisit["completed_at"] is not None and revisit["completed_at"] <= revisit["due_at"]


def _late_and_open(revisit, now):
    return revisit["status"] in ("scheduled", "booked", "overdue") and revisit["due_at"] < now
