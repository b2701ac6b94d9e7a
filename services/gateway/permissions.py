"""Who may do what: the one table of roles × actions (the estate scope is the other half,
``shared.actor.Actor.covers``, and a department's staff are confined to their department's
work: ``confined_department``). Roles come from the policy texts (USER_ROLES).

No action here returns a full phone number or e-mail address: those leave intake only
for notify (``intake.get_contact``), so no role can be granted them over HTTP.
"""
from collections.abc import Iterable

from shared.actor import Actor
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
    # work orders: no department's work (``NOT_A_DEPARTMENTS_WORK``)
    "work_orders.register": DESK,
    "work_orders.list": EVERYONE - {DEP},
    "work_orders.get": EVERYONE - {DEP},
    "work_orders.complete": DESK,
    "work_orders.cancel": DESK,
    # revisits 回访
    "revisits.list": DESK | {HQ},
    "revisits.get": DESK | {HQ},
    "revisits.book": DESK,
    "revisits.record": DESK,
    "revisits.reply": DESK,                      # the visitor's promise (as above)
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


# Work that names no department, so a department's staff, who see their own department's
# alone (``confined_department``), have none of it — and are told why (``refusal``). The
# policy texts route a complaint to its 责任部门 by category (「物业员判断业主反映问题的责任
# 部门」); no text says whose a work order (派工单) is, nor a visitor's promised reply, and
# neither record names a department (see README "Departments").
NOT_A_DEPARTMENTS_WORK = {
    **dict.fromkeys(("work_orders.register", "work_orders.list", "work_orders.get",
                     "work_orders.complete", "work_orders.cancel"),
                    "work orders name no department: a department's staff see the complaints, "
                    "follow-ups and rectifications given to their department"),
    "revisits.reply": "a reply promised on a revisit is the service centre's to give: a "
                      "department answers the follow-ups given to it",
}


def allowed(roles: Iterable[str], action: str) -> bool:
    """May someone with ``roles`` take ``action``? Unknown actions are allowed to nobody."""
    return bool(PERMISSIONS.get(action, set()) & set(roles))


def refusal(roles: Iterable[str], action: str) -> str:
    """Why someone with ``roles`` may not take ``action`` (a 403's words)."""
    if set(roles) == {DEP} and action in NOT_A_DEPARTMENTS_WORK:
        return NOT_A_DEPARTMENTS_WORK[action]
    return "your role may not do this"


def may_action(actor: Actor, action: str) -> bool:
    """May ``actor`` take ``action``, asked by the table's own key — for a page that offers
    an action on every record of a kind, with no one record's route to match. (The estate
    scope is the record's question: ``Actor.covers``.) An action the table does not name
    is a mistake in the asking, raised, never quietly "no"."""
    if action not in PERMISSIONS:
        raise KeyError(f"no such action in the permission table: {action!r}")
    return allowed(actor.roles, action)


# What a confined person without a department is confined to: no record names it.
NO_DEPARTMENT = ""


def confined_department(actor: Actor) -> str | None:
    """The department whose work alone a person sees and acts on — the complaints assigned
    to it, the follow-ups and rectifications it carries out — or None when not confined.

    「责任部门」 staff (whose only role is ``department``) are confined to their account's
    department; one whose account names none (made before accounts had departments) to
    ``NO_DEPARTMENT``: none of that work until an administrator sets it. Anyone with another
    role too works across their estates as that role does.
    """
    if set(actor.roles) != {DEP}:
        return None
    return actor.department or NO_DEPARTMENT
