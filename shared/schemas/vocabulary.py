"""The closed vocabularies of the contract (docs/rpc.md, docs/asyncapi.yaml), named once."""

SERVICES = ("intake", "revisit", "survey", "notify")

CHANNELS = ("hotline", "visit", "online", "wechat", "mailbox", "letter")
SEVERITIES = ("normal", "major", "emergency")
OWNER_SIGNOFFS = ("satisfied", "unsatisfied", "none")
REOPEN_SOURCES = ("owner", "revisit", "review")
WORK_ORDER_KINDS = (
    "repair", "special_service", "assistance", "community_activity", "other_service",
)
# Category taxonomy: the nine survey categories plus what complaints add.
SURVEY_CATEGORIES = (
    "power_supply", "water_supply", "fire_security", "order", "cleaning",
    "greening", "public_facilities", "repair_service", "service_attitude",
)
COMPLAINT_CATEGORIES = SURVEY_CATEGORIES + ("parking", "noise", "neighbours", "fees", "other")
# What a complaint can be late on, how a review (复核) ends, where an outside unit stands.
COMPLAINT_DEADLINES = ("first_response", "reply", "promised_reply", "special_measures", "review")
# Where a complaint was made: to an estate's service centre, or to the company or its
# manager directly (「直接向公司或公司经理投诉」).
COMPLAINT_LEVELS = ("estate", "company")
REVIEW_OUTCOMES = ("upheld", "overturned")
EXTERNAL_STATUSES = ("referred", "in_progress", "resolved", "declined")

REVISIT_KINDS = ("complaint",) + WORK_ORDER_KINDS + ("routine",)
REVISIT_STATUSES = ("scheduled", "booked", "done", "overdue", "cancelled")
REVISIT_METHODS = ("phone", "sms", "email", "wechat", "onsite")
# A revisit the owner answered themselves, through the link in its message
# (revisit.record_online_revisit): an outcome's method, never one staff record.
ONLINE_METHOD = "online"
ROLES = ("staff", "supervisor", "manager")
SATISFACTION_LEVELS = (
    "very_satisfied", "satisfied", "neutral", "unsatisfied", "very_unsatisfied",
)
UNSATISFIED_LEVELS = ("unsatisfied", "very_unsatisfied")
# A follow-up of an unsatisfied work-order or routine revisit (「向相关部门反馈」): the
# department records its measures, then answers the owner (「一个月内向业主反馈」).
FOLLOWUP_STATUSES = ("open", "measures_recorded", "answered")

ROUND_KINDS = ("half_yearly", "quarterly", "event")
DELIVERY_STATUSES = ("queued", "sent", "failed", "suppressed")

# People who log in (gateway), from the policy texts: 客服助理, 客服主管, 项目经理, 公司经理,
# 责任部门, 总部, and the administrator. The services' own rungs (ROLES, the escalation
# ladder) say "staff" and "manager"; USER_ROLE_RUNGS translates.
USER_ROLES = (
    "cs_staff", "supervisor", "estate_manager", "company_manager", "department", "hq_analyst",
    "admin",
)
USER_ROLE_RUNGS = {
    "cs_staff": "staff", "supervisor": "supervisor", "estate_manager": "manager",
    "company_manager": "company_manager",
}
# 责任部门: its staff see and act on their own department's work only.
DEPARTMENT_ROLE = "department"
# Roles whose empty estate list means every estate of the group.
GROUP_WIDE_ROLES = ("hq_analyst", "company_manager", "admin")
