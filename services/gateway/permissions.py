"""Who may do what: the one table of roles × actions (the estate scope is the other half,
``shared.actor.Actor.covers``). Roles come from the policy texts (USER_ROLES).

No action here returns a full phone number or e-mail address: those leave intake only
for notify (``intake.get_contact``), so no role can be granted them over HTTP.
"""
from collections.abc import Iterable

from shared.schemas.vocabulary import USER_ROLES

CS, SUP, EM, CM, DEP, HQ, ADM = USER_ROLES

DESK = {CS, SUP, EM, CM, ADM}           # the service centre, who register and follow up
SUPERVISORS = {SUP, EM, CM, ADM}        # 客服主管 and above
MANAGERS = {EM, CM, ADM}                # 项目经理 and above
EVERYONE = set(USER_ROLES)
GROUP = {CM, HQ, ADM}                   # who may look across every estate of the group

PERMISSIONS: dict[str, set[str]] = {
    # estates: each user sees their own; headquarters' administrators keep the records
    "estates.list": EVERYONE,
    "estates.get": EVERYONE,
    "estates.register": {ADM},
    "estates.update": {ADM},
    # households and contacts (masked)
    "households.import": SUPERVISORS,
    "households.list": DESK,
    "households.get": DESK,
    "households.key_customer": SUPERVISORS,      # 重点客户: supervisor or above
    "categories.list": EVERYONE,
    # complaints 「客服助理接待…客服主管跟进…」
    "complaints.register": DESK,
    "complaints.list": EVERYONE,
    "complaints.get": EVERYONE,
    "complaints.acknowledge": DESK,
    "complaints.assign": DESK,
    "complaints.resolve": DESK | {DEP},           # the responsible department answers
    "complaints.close": DESK,
    "complaints.reopen": DESK,
    "complaints.review": DESK,                   # asked for on the owner's behalf
    "complaints.decide_review": MANAGERS,        # 复核: the estate manager decides
    "complaints.escalate": DESK | {DEP},
    # 「待经理做出明确指示」: the managers a complaint is escalated to (intake checks the rung)
    "complaints.instruct": {EM, CM},
    "complaints.special_measures": SUPERVISORS,  # repeat complaints: 24-hour special measures
    "complaints.external_status": DESK | {DEP},
    "complaints.flag_malicious": SUPERVISORS,    # 恶意投诉: supervisor or above
    # work orders
    "work_orders.register": DESK | {DEP},
    "work_orders.list": EVERYONE,
    "work_orders.get": EVERYONE,
    "work_orders.complete": DESK | {DEP},
    "work_orders.cancel": DESK,
    # revisits 回访
    "revisits.list": DESK | {HQ},
    "revisits.get": DESK | {HQ},
    "revisits.book": DESK,
    "revisits.record": DESK,
    "revisits.reply": DESK | {DEP},
    # follow-ups of unsatisfied revisits: the responsible department records its measures
    # and answers; the service centre may pass the answer on (「服务中心…向业主反馈」)
    "followups.list": DESK | {DEP, HQ},
    "followups.get": DESK | {DEP, HQ},
    "followups.measures": SUPERVISORS | {DEP},
    "followups.answer": DESK | {DEP},
    "revisits.close_sampling_month": SUPERVISORS,
    "revisits.plan_routine": SUPERVISORS,
    "revisits.monthly_plan": DESK | {HQ},        # 「每月应制定回访计划」, and its workbook
    "revisits.policy": SUPERVISORS | {HQ},
    # statistics: one estate's, and the whole group's
    "stats.estate": SUPERVISORS | {HQ},
    "stats.group": GROUP,
    # surveys 满意度调查
    "survey.templates.list": EVERYONE,
    "survey.templates.get": EVERYONE,
    "survey.templates.save": {CM, HQ, ADM},
    "survey.rounds.create": MANAGERS | {HQ},
    "survey.rounds.list": SUPERVISORS | {HQ},
    "survey.rounds.get": SUPERVISORS | {HQ},
    "survey.rounds.close": MANAGERS | {HQ},
    "survey.rounds.publish": MANAGERS | {HQ},
    "survey.rounds.report": SUPERVISORS | {HQ},
    "survey.rounds.ranking": GROUP | {EM},
    "survey.rounds.export": SUPERVISORS | {HQ},
    "survey.rounds.check": {HQ, ADM},
    "survey.invitations.list": SUPERVISORS,      # tokens are the owners' credentials
    "survey.rectifications.add": SUPERVISORS | {HQ},
    "survey.rectifications.list": EVERYONE,
    "survey.rectifications.get": EVERYONE,
    "survey.rectifications.update": SUPERVISORS | {DEP},
    # notices
    "notify.deliveries.list": SUPERVISORS,
    "notify.preferences.set": DESK,
    # accounts
    "users.manage": {ADM},
}


def allowed(roles: Iterable[str], action: str) -> bool:
    """May someone with ``roles`` take ``action``? Unknown actions are allowed to nobody."""
    return bool(PERMISSIONS.get(action, set()) & set(roles))
