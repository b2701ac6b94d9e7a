"""intake: households, complaints and work orders. Entrypoints only."""
from functools import cache

from nameko.dependency_providers import Config

from services.intake import domain
from services.intake.repository import IntakeRepository
from shared.dependencies import ClockProvider, Store
from shared.errors import InvalidInput, NotFound
from shared.messaging import handles
from shared.rpc import rpc, to_json
from shared.schemas import intake as schemas
from shared.schemas.base import load, require_id
from shared.workdays import WorkingCalendar


@cache
def calendar_for(timezone_name):
    return WorkingCalendar(timezone_name)


class IntakeService:
    name = "intake"

    store = Store(IntakeRepository)
    clock = ClockProvider()
    config = Config()

    # households ---------------------------------------------------------------

    @rpc
    def import_households(self, estate_id, rows):
        require_id(estate_id, "estate_id")
        if not isinstance(rows, list):
            raise InvalidInput({"rows": ["expected a list of households"]})
        rows = load(schemas.HouseholdRow(many=True), rows, field="rows", many=True)
        return self.store.import_households(estate_id, rows, self.clock.now())

    @rpc
    def list_households(self, estate_id, filters=None):
        require_id(estate_id, "estate_id")
        filters = load(schemas.HouseholdFilters(), filters or {})
        households = self.store.list_households(estate_id, filters)
        return [to_json(domain.public_view(household)) for household in households]

    @rpc
    def get_contact(self, ref):
        """The full contact of a household or a complaint's reporter (for ``notify``)."""
        require_id(ref, "ref")
        complaint = self.store.find_complaint(ref)
        household_id = complaint["household_id"] if complaint else ref
        household = self.store.find_household(household_id) if household_id else None
        if household is not None:
            contact = domain.preferred_contact(household.get("contacts", []))
            return {"household_id": household["_id"], "estate_id": household["estate_id"],
                    **(contact or {})}
        if complaint is not None and complaint.get("reporter"):
            return {"household_id": None, "estate_id": complaint["estate_id"],
                    "preferred_channel": "sms", **complaint["reporter"]}
        raise NotFound("household or complaint", ref)

    # complaints ---------------------------------------------------------------

    @rpc
    def register_complaint(self, data):
        data = load(schemas.RegisterComplaint(), data)
        self._check_references(data)
        complaint, events = domain.register(
            domain.new_complaint_id(), data, *self._policy(data["estate_id"]), self.clock.now())
        return self._view(self.store.add_complaint(complaint, events))

    @rpc
    def acknowledge_complaint(self, complaint_id, data):
        data = load(schemas.AcknowledgeComplaint(), data)
        return self._move(complaint_id, "acknowledge", data["staff_id"], data["note"])

    @rpc
    def assign_complaint(self, complaint_id, data):
        data = load(schemas.AssignComplaint(), data)
        actor = data["assignee_id"] or data["department"]
        return self._move(complaint_id, "assign", actor, f"to {data['department']}", data)

    @rpc
    def resolve_complaint(self, complaint_id, data):
        data = load(schemas.ResolveComplaint(), data)
        return self._move(complaint_id, "resolve", data["staff_id"], data["resolution"],
                          {"resolution": data["resolution"]})

    @rpc
    def close_complaint(self, complaint_id, data):
        data = load(schemas.CloseComplaint(), data)
        changes = {"closed_by": data["closed_by"], "owner_signoff": data["owner_signoff"],
                   "at": data["closed_at"]}
        return self._move(complaint_id, "close", data["closed_by"],
                          f"owner sign-off: {data['owner_signoff']}", changes)

    @rpc
    def reopen_complaint(self, complaint_id, data):
        data = load(schemas.ReopenComplaint(), data)
        return self._move(complaint_id, "reopen", data["source"], data["reason"],
                          {"reopen_source": data["source"]})

    @rpc
    def get_complaint(self, complaint_id):
        require_id(complaint_id, "id")
        return self._view(self.store.get_complaint(complaint_id))

    @rpc
    def list_complaints(self, filters=None):
        filters = load(schemas.ComplaintFilters(), filters or {})
        return [self._view(complaint) for complaint in self.store.list_complaints(filters)]

    @handles("revisit", "revisit_unsatisfied")
    def reopen_after_unsatisfied_revisit(self, event):
        """「物业公司应主动回访已投诉的业主,了解投诉问题是否得到解决」: if not, it reopens."""
        data = event["data"]
        if data["kind"] != "complaint":
            return
        complaint = self.store.get_complaint(data["source_id"])
        if not domain.can_reopen_after_revisit(complaint):
            return  # already reopened by someone else: nothing to do
        reason = data["comments"] or f"follow-up visit {data['revisit_id']}: owner unsatisfied"
        estate_policy, calendar = self._policy(complaint["estate_id"])
        complaint, events = domain.apply(
            complaint, "reopen", "revisit", self.clock.now(), reason,
            {"reopen_source": "revisit"}, estate_policy, calendar)
        self.store.save_complaint(complaint, events, handled_event=event["id"])

    # helpers ------------------------------------------------------------------

    def _move(self, complaint_id, action, actor, note, changes=None):
        require_id(complaint_id, "id")
        complaint = self.store.get_complaint(complaint_id)
        estate_policy, calendar = self._policy(complaint["estate_id"])
        complaint, events = domain.apply(
            complaint, action, actor, self.clock.now(), note, dict(changes or {}),
            estate_policy, calendar)
        return self._view(self.store.save_complaint(complaint, events))

    def _check_references(self, data):
        if not self.store.estate_exists(data["estate_id"]):
            raise InvalidInput({"estate_id": ["unknown estate"]})
        household_id = data.get("household_id")
        if household_id:
            household = self.store.find_household(household_id)
            if household is None or household["estate_id"] != data["estate_id"]:
                raise InvalidInput({"household_id": ["unknown household in this estate"]})

    def _policy(self, estate_id):
        values = dict(self.config.get("COMPLAINT_POLICY") or {})
        values.update((self.config.get("ESTATE_POLICIES") or {}).get(estate_id, {}))
        estate_policy = domain.ComplaintPolicy(**values)
        return estate_policy, calendar_for(estate_policy.timezone)

    @staticmethod
    def _view(complaint):
        return to_json(domain.public_view(complaint))
