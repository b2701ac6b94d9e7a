"""revisit: schedules and records follow-up visits. Entrypoints only."""
from nameko.dependency_providers import Config

from services.revisit import domain
from services.revisit.repository import RevisitRepository
from shared.dependencies import ClockProvider, Store
from shared.messaging import handles
from shared.rpc import rpc, to_json
from shared.schemas import revisit as schemas
from shared.schemas.base import load, require_id


class RevisitService:
    name = "revisit"

    store = Store(RevisitRepository)
    clock = ClockProvider()
    config = Config()

    @handles("intake", "complaint_closed")
    def schedule_complaint_revisit(self, event):
        revisit, events = domain.schedule_complaint_revisit(
            event["data"], event["estate_id"], self._policy(), self.clock.now())
        self.store.schedule(revisit, events)

    @rpc
    def list_revisits(self, filters=None):
        filters = load(schemas.RevisitFilters(), filters or {})
        return [to_json(revisit) for revisit in self.store.list(filters)]

    @rpc
    def get_revisit(self, revisit_id):
        require_id(revisit_id, "id")
        return to_json(self.store.get(revisit_id))

    @rpc
    def book_appointment(self, revisit_id, data):
        require_id(revisit_id, "id")
        appointment = load(schemas.BookAppointment(), data)
        revisit, events = domain.book(self.store.get(revisit_id), appointment, self.clock.now())
        return to_json(self.store.save(revisit, events))

    @rpc
    def record_revisit(self, revisit_id, data):
        require_id(revisit_id, "id")
        outcome = load(schemas.RecordRevisit(), data)
        revisit, events = domain.record(
            self.store.get(revisit_id), outcome, self._policy(), self.clock.now())
        return to_json(self.store.save(revisit, events))

    def _policy(self):
        return domain.RevisitPolicy(**(self.config.get("REVISIT_POLICY") or {}))
