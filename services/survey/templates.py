"""Questionnaire templates: the categories an owner rates (the nine of the policy text and
the common additions), their labels, the answer scale, and versioned templates. Pure Python.

A template changes by a new version; rounds keep the version they used.
"""
from collections.abc import Iterable
from datetime import datetime

from services.survey.rounds import by_person
from shared.errors import InvalidInput
from shared.schemas.survey import GENERAL_COMMENT

# The nine default categories of the policy text, 「1.供电管理 2.供水管理 3.消防治安管理 …」.
CATEGORY_LABELS = {
    "power_supply": ("供电", "Power supply"),
    "water_supply": ("供水", "Water supply"),
    "fire_security": ("消防治安", "Fire safety and security"),
    "order": ("秩序", "Order"),
    "cleaning": ("卫生", "Cleaning"),
    "greening": ("绿化", "Greening"),
    "public_facilities": ("公共设施", "Public facilities"),
    "repair_service": ("维修服务", "Repair service"),
    "service_attitude": ("服务态度", "Service attitude"),
}
# What estates and rounds commonly add: 「(2) 停车管理和交通情况的评价」, 「物业费调整」,
# 「社区活动:包括社区组织的活动丰富性、吸引力等」, 「5.投诉处理:住户对物业投诉处理的满意度」.
OPTIONAL_CATEGORY_LABELS = {
    "complaint_handling": ("投诉处理", "Complaint handling"),
    "parking": ("停车管理", "Parking"),
    "fees": ("物业收费", "Fees"),
    "community_activities": ("社区文化活动", "Community activities"),
}
KNOWN_CATEGORIES = {**CATEGORY_LABELS, **OPTIONAL_CATEGORY_LABELS}
GENERAL_LABELS = ("总体意见", "General")
DEFAULT_TEMPLATE_ID = "default"
DEFAULT_TEMPLATE_TITLE = "物业服务满意度调查（标准九项）"
# What the owner's form shows for each answer (``ANSWER_SCALE``; "null": not applicable).
SCALE_LABELS = {"5": "非常满意", "4": "满意", "3": "一般", "2": "不满意", "1": "非常不满意",
                "null": "不适用"}


def template_document(template_id: str, version: int, title: str, categories: list[dict],
                      now: datetime) -> dict:
    # "template_version", not "version": that name is the store's optimistic lock
    return {
        "_id": f"{template_id}:v{version}",
        "template_id": template_id,
        "template_version": version,
        "title": title,
        "categories": categories,
        "created_at": now,
    }


def default_template(now: datetime) -> dict:
    """Version 1 of the default template: the nine categories of the policy text."""
    return template_document(DEFAULT_TEMPLATE_ID, 1, DEFAULT_TEMPLATE_TITLE, [
        _definition(key, *labels) for key, labels in CATEGORY_LABELS.items()], now)


def new_template_version(data: dict, latest: dict | None, now: datetime,
                         created_by: str | None = None) -> dict:
    """The next version of a template (version 1 if it is new); old versions never change.
    ``created_by``: the person who saved it, when a person did (the gateway)."""
    categories = resolve_categories(data["categories"], latest, "categories")
    version = latest["template_version"] + 1 if latest else 1
    return by_person(
        template_document(data["template_id"], version, data["title"], categories, now),
        "created_by", created_by)


def resolve_categories(items: Iterable[str | dict], template: dict | None,
                       field: str) -> list[dict]:
    """Category items (a known key, or a full definition) as definitions.

    A key is known if the template defines it, or it is one of the nine or of the
    common additions (parking, fees, community activities).
    """
    known = {**{key: _definition(key, *labels) for key, labels in KNOWN_CATEGORIES.items()},
             **{entry["key"]: entry for entry in (template or {}).get("categories", [])}}
    definitions: list[dict] = []
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        definition = item if isinstance(item, dict) else known.get(item)
        if definition is None:
            errors[f"{field}.{index}"] = [(
                f"{item}: not a category of this template; define it with key, label_zh "
                "and label_en")]
        elif any(entry["key"] == definition["key"] for entry in definitions):
            errors[f"{field}.{index}"] = [f"{definition['key']}: asked twice"]
        else:
            definitions.append(dict(definition))
    if errors:
        raise InvalidInput(errors)
    return definitions


def offered(template: dict) -> dict:
    """``template`` as a round is made from it: with the known categories it does not ask
    that a round may add by key (``additional_categories``: 「投诉处理」, which the texts
    list beside the nine, parking, fees, community activities)."""
    asked = {entry["key"] for entry in template["categories"]}
    return {**template, "additional_categories": [
        _definition(key, *labels) for key, labels in KNOWN_CATEGORIES.items()
        if key not in asked]}


def _definition(key: str, label_zh: str, label_en: str) -> dict:
    return {"key": key, "label_zh": label_zh, "label_en": label_en}


def label(round_: dict, key: str) -> tuple[str, str]:
    if key == GENERAL_COMMENT:
        return GENERAL_LABELS
    zh, en = round_.get("labels", {}).get(key) or KNOWN_CATEGORIES.get(key, (key, key))
    return zh, en
