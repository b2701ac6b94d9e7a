"""survey: satisfaction-survey rounds, invitations, responses and reports. Entrypoints only."""
from nameko.rpc import RpcProxy

from services.survey import domain
from services.survey.repository import SurveyRepository
from shared.dependencies import ClockProvider, Store
from shared.rpc import rpc, to_json
from shared.schemas import survey as schemas
from shared.schemas.base import load, require_id


class SurveyService:
    name = "survey"

    store = Store(SurveyRepository)
    clock = ClockProvider()
    intake = RpcProxy("intake")

    # rounds ---------------------------------------------------------------------

    @rpc
    def create_round(self, data):
        data = load(schemas.CreateRound(), data)
        now = self.clock.now()
        domain.check_schedule(data, now)
        households = {
            estate_id: self.intake.list_households(estate_id, {"occupied": True})
            for estate_id in data["estate_ids"]
        }
        round_, events, issued = domain.open_round(domain.new_round_id(), data, households, now)
        return to_json(self.store.add_round(round_, events, issued))

    @rpc
    def list_invitations(self, round_id, estate_id=None):
        round_ = self._round(round_id)
        if estate_id is not None:
            domain.check_estate(round_, require_id(estate_id, "estate_id"))
        return to_json(self.store.list_invitations(round_["_id"], estate_id))

    @rpc
    def close_round(self, round_id):
        round_ = self._round(round_id)
        now = self.clock.now()
        round_, events = domain.close(round_, self.store.returned_by_estate(round_["_id"]), now)
        saved = self.store.save_round(round_, events)
        self.store.expire_invitations(round_["_id"], now)
        return to_json(saved)

    @rpc
    def round_report(self, round_id, estate_id=None):
        round_ = self._round(round_id)
        if estate_id is not None:
            domain.check_estate(round_, require_id(estate_id, "estate_id"))
        tallies = self.store.tallies(round_["_id"], estate_id)
        comments = self.store.comments(round_["_id"], estate_id)
        return to_json(domain.report(round_, tallies, comments, estate_id))

    # answering ----------------------------------------------------------------

    @rpc
    def submit_response(self, token, data):
        schemas.require_token(token)
        invitation = self.store.find_invitation(token)
        if invitation is None:
            raise domain.refuse_token(domain.UNKNOWN_TOKEN)
        round_ = self.store.get_round(invitation["round_id"])
        now = self.clock.now()
        reason = domain.why_not_answerable(round_, invitation, now)
        if reason:
            raise domain.refuse_token(reason)
        data = load(schemas.SubmitResponse(round_["categories"]), data)
        if self.store.claim_invitation(invitation["_id"], now) is None:
            # Someone else got there first: a concurrent submission, or the round closed.
            latest = self.store.find_invitation(token)
            raise domain.refuse_token(
                domain.why_not_answerable(round_, latest, now) or domain.USED_TOKEN)
        self.store.add_response(domain.response(round_, invitation, data, now),
                                domain.tally_increment(data["answers"]))
        return {"accepted": True}

    # helpers ------------------------------------------------------------------

    def _round(self, round_id):
        return self.store.get_round(require_id(round_id, "round_id"))
