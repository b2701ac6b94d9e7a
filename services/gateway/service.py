"""gateway: the only door people and outside systems use. Entrypoints only.

HTTP (nameko's ``http`` entrypoint over werkzeug, as in nameko-examples' gateway):
health, the OpenAPI document and its docs, logins, staff accounts, the REST API of
``api.OPERATIONS``, the owners' pages and the staff console. RPC: the same account
operations for the ``huifang-users`` command. A timer: the console's long imports and
exports, a job claimed at a time (``console_jobs``).
"""
import logging

import eventlet
from nameko.dependency_providers import Config

from services.gateway import (
    api,
    console,
    console_admin,
    console_dashboard,
    console_followups,
    console_jobs,
    console_records,
    console_revisits,
    console_surveys,
    docs,
    owner,
    owner_complaint,
    owner_revisit,
    pages,
    session,
)
from services.gateway.accounts import known_departments
from services.gateway.dependencies import AccountStore
from services.gateway.http import http, json_body, json_response, max_body
from services.gateway.permissions import allowed
from services.gateway.problems import Problem
from shared.idempotency import idempotent
from shared.rpc import RpcProxy, rpc
from shared.schemas.vocabulary import SERVICES
from shared.timers import timer_from_config

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2


class GatewayService:
    name = "gateway"

    accounts = AccountStore()
    config = Config()
    intake = RpcProxy("intake")
    revisit = RpcProxy("revisit")
    survey = RpcProxy("survey")
    notify = RpcProxy("notify")
    # /readyz: each service must answer within 2 s, however long ordinary calls may take
    ping_intake = RpcProxy("intake", timeout=READY_TIMEOUT_SECONDS)
    ping_revisit = RpcProxy("revisit", timeout=READY_TIMEOUT_SECONDS)
    ping_survey = RpcProxy("survey", timeout=READY_TIMEOUT_SECONDS)
    ping_notify = RpcProxy("notify", timeout=READY_TIMEOUT_SECONDS)

    # health and documentation ------------------------------------------------------

    @http("GET", "/healthz")
    def healthz(self, request):
        return json_response({"status": "ok"})

    @http("GET", "/readyz")
    def readyz(self, request):
        answers = {name: eventlet.spawn(self._ping, name) for name in SERVICES}
        services = {name: answer.wait() for name, answer in answers.items()}
        ready = all(state == "ok" for state in services.values())
        return json_response({"status": "ok" if ready else "unavailable",
                              "services": services}, 200 if ready else 503,
                             None if ready else {"Retry-After": "5"})

    def _ping(self, name):
        try:
            getattr(self, f"ping_{name}").ping()
        except Exception as exc:  # noqa: BLE001 - down, unknown or slow: not ready, whatever the reason
            return f"not answering ({type(exc).__name__})"
        return "ok"

    @http("GET", "/openapi.json")
    def openapi(self, request):
        return json_response(docs.openapi_document())

    @http("GET", "/docs")
    def docs_page(self, request):
        return docs.docs_page()

    @http("GET", "/docs/assets/<string:name>")
    def docs_asset(self, request, name):
        return docs.asset(name)

    # logins --------------------------------------------------------------------------

    @http("POST", "/api/v1/auth/token")
    def login(self, request):
        answer, _ = self.accounts.login(self._body(request), request.remote_addr or "")
        return json_response(answer, headers={"Cache-Control": "no-store"})

    @http("POST", "/api/v1/auth/session")
    def login_browser(self, request):
        """A browser's login: the token in an HttpOnly cookie, the CSRF token in the body."""
        answer, claims = self.accounts.login(self._body(request), request.remote_addr or "")
        response = json_response({"csrf_token": self.accounts.csrf_token(claims),
                                  "expires_in": answer["expires_in"], "user": answer["user"]},
                                 headers={"Cache-Control": "no-store"})
        return session.start(response, answer, self.accounts.settings.secure_cookies)

    @http("POST", "/api/v1/auth/logout")
    def logout(self, request):
        _, claims = self.accounts.authenticate(request)
        self.accounts.logout(claims)
        return session.end(json_response({"logged_out": True}))

    @http("GET", "/api/v1/me")
    def me(self, request):
        actor, _ = self.accounts.authenticate(request)
        return json_response(self.accounts.get_user(actor.id))

    @http("POST", "/api/v1/me/password")
    def change_password(self, request):
        actor, _ = self.accounts.authenticate(request)
        self.accounts.change_password(actor, self._body(request))
        return json_response({"changed": True, "detail": "log in again with the new password"})

    # staff accounts (administrators) ------------------------------------------------------

    @http("POST", "/api/v1/users")
    def create_user_http(self, request):
        actor = self._admin(request)
        return json_response(self.accounts.create_user(self._body(request), actor.id,
                                                       self._departments()), 201)

    @http("GET", "/api/v1/users")
    def list_users_http(self, request):
        self._admin(request)
        return json_response(self.accounts.list_users(api.query_filters(None, request)))

    @http("GET", "/api/v1/users/<string:user_id>")
    def get_user_http(self, request, user_id):
        self._admin(request)
        return json_response(self.accounts.get_user(user_id))

    @http("PATCH", "/api/v1/users/<string:user_id>")
    def update_user_http(self, request, user_id):
        actor = self._admin(request)
        return json_response(self.accounts.update_user(user_id, self._body(request), actor.id,
                                                       self._departments()))

    # the REST API of the services --------------------------------------------------------

    @http("GET,POST,PUT,PATCH,DELETE", "/api/v1/<path:path>")
    def api(self, request, path):
        actor, _ = self.accounts.authenticate(request)
        operation, values = api.match(request.method, f"{api.PREFIX}/{path}")
        return api.execute(operation, request, values, actor, self._services(),
                           max_body(self.config))

    # the owners' pages (no login: the link's token is the credential) ---------------------

    @http("GET", "/s/<string:token>")
    def survey_page(self, request, token):
        return owner.survey_page(self._owner(request), token)

    @http("POST", "/s/<string:token>")
    def survey_submit(self, request, token):
        return owner.survey_submit(self._owner(request), token)

    @http("GET", "/r/<string:token>")
    def revisit_page(self, request, token):
        return owner_revisit.revisit_page(self._owner(request), token)

    @http("POST", "/r/<string:token>")
    def revisit_submit(self, request, token):
        return owner_revisit.revisit_submit(self._owner(request), token)

    @http("GET", "/c/<string:token>")
    def complaint_page(self, request, token):
        received = request.args.get("received") == "1"   # just filed on the online form
        return owner_complaint.complaint_page(self._owner(request), token, received)

    @http("POST", "/c/<string:token>/review")
    def complaint_review(self, request, token):
        return owner_complaint.review_submit(self._owner(request), token)

    @http("GET", "/e/<string:estate_id>/complain")
    def complaint_form(self, request, estate_id):
        return owner_complaint.complaint_form(self._owner(request), estate_id)

    @http("POST", "/e/<string:estate_id>/complain")
    def complaint_submit(self, request, estate_id):
        return owner_complaint.complaint_submit(self._owner(request), estate_id)

    # the staff console (a login session; services/gateway/console.py) --------------------

    @http("GET", "/console/login")
    def console_login_page(self, request):
        return console.login_page(self._console(request))

    @http("POST", "/console/login")
    def console_login(self, request):
        return console.login_submit(self._console(request))

    @http("POST", "/console/logout")
    def console_logout(self, request):
        return console.logout(self._console(request))

    @http("GET", "/console/")
    def console_worklist(self, request):
        return console.worklist(self._console(request))

    @http("GET", "/console/complaints/new")
    def console_new_complaint(self, request):
        return console.new_complaint(self._console(request))

    @http("POST", "/console/complaints/new")
    def console_register(self, request):
        return console.register(self._console(request))

    @http("GET", "/console/complaints/<string:complaint_id>")
    def console_complaint(self, request, complaint_id):
        return console.complaint_page(self._console(request), complaint_id)

    @http("POST", "/console/complaints/<string:complaint_id>/<string:action>")
    def console_act(self, request, complaint_id, action):
        return console.act(self._console(request), complaint_id, action)

    @http("GET", "/console/revisits/")
    def console_revisits(self, request):
        return console_revisits.worklist(self._console(request))

    @http("GET", "/console/revisits/followups/")
    def console_followups(self, request):
        return console_followups.worklist(self._console(request))

    @http("GET", "/console/revisits/followups/<string:followup_id>")
    def console_followup(self, request, followup_id):
        return console_followups.followup_page(self._console(request), followup_id)

    @http("POST", "/console/revisits/followups/<string:followup_id>/<string:action>")
    def console_followup_act(self, request, followup_id, action):
        return console_followups.act(self._console(request), followup_id, action)

    @http("GET", "/console/revisits/<string:revisit_id>")
    def console_revisit(self, request, revisit_id):
        return console_revisits.revisit_page(self._console(request), revisit_id)

    @http("POST", "/console/revisits/<string:revisit_id>/<string:action>")
    def console_revisit_act(self, request, revisit_id, action):
        return console_revisits.act(self._console(request), revisit_id, action)

    @http("GET", "/console/dashboard")
    def console_dashboard(self, request):
        return console_dashboard.dashboard(self._console(request))

    @http("GET", "/console/surveys/")
    def console_surveys(self, request):
        return console_surveys.rounds_page(self._console(request))

    @http("GET", "/console/surveys/rectifications")
    def console_rectifications(self, request):
        return console_surveys.rectifications_page(self._console(request))

    @http("GET", "/console/surveys/new")
    def console_new_round(self, request):
        return console_surveys.new_round(self._console(request))

    @http("POST", "/console/surveys/new")
    def console_create_round(self, request):
        return console_surveys.create_round(self._console(request))

    @http("GET", "/console/surveys/<string:round_id>")
    def console_round(self, request, round_id):
        return console_surveys.round_page(self._console(request), round_id)

    @http("GET", "/console/surveys/<string:round_id>/live")
    def console_round_live(self, request, round_id):
        return console_surveys.live(self._console(request), round_id)

    @http("POST", "/console/surveys/<string:round_id>/<string:action>")
    def console_round_act(self, request, round_id, action):
        return console_surveys.act(self._console(request), round_id, action)

    @http("POST", "/console/surveys/<string:round_id>/rectifications/<string:rectification_id>")
    def console_rectification_update(self, request, round_id, rectification_id):
        return console_surveys.update_rectification(self._console(request), round_id,
                                                    rectification_id)

    @http("GET", "/console/records/")
    def console_records(self, request):
        return console_records.index(self._console(request))

    @http("GET", "/console/records/complaints")
    def console_complaint_record_lookup(self, request):
        return console_records.complaint_lookup(self._console(request))

    @http("GET", "/console/records/complaints/<string:complaint_id>")
    def console_complaint_record(self, request, complaint_id):
        return console_records.complaint_record(self._console(request), complaint_id)

    @http("GET", "/console/records/revisits")
    def console_revisit_book(self, request):
        return console_records.revisit_book(self._console(request))

    @http("GET", "/console/records/surveys")
    def console_survey_notice(self, request):
        return console_records.survey_notice(self._console(request))

    @http("GET", "/console/records/complaint-report")
    def console_complaint_report(self, request):
        return console_records.complaint_report(self._console(request))

    @http("GET", "/console/jobs/")
    def console_jobs_page(self, request):
        return console_jobs.jobs_page(self._console(request))

    @http("POST", "/console/jobs/import")
    def console_import(self, request):
        return console_jobs.upload_or_refuse(self._console(request))

    @http("POST", "/console/jobs/export")
    def console_export(self, request):
        return console_jobs.export(self._console(request))

    @http("GET", "/console/jobs/<string:job_id>")
    def console_job(self, request, job_id):
        return console_jobs.job_page(self._console(request), job_id)

    @http("GET", "/console/jobs/<string:job_id>/progress")
    def console_job_progress(self, request, job_id):
        return console_jobs.progress(self._console(request), job_id)

    @http("POST", "/console/jobs/<string:job_id>/start")
    def console_job_start(self, request, job_id):
        return console_jobs.start(self._console(request), job_id)

    @http("GET", "/console/jobs/<string:job_id>/file")
    def console_job_file(self, request, job_id):
        return console_jobs.download(self._console(request), job_id)

    # the console's jobs, claimed by one instance at a time (services/gateway/jobs.py)
    @timer_from_config("GATEWAY_JOB_SECONDS", 1)
    def run_console_jobs(self):
        console_jobs.run_jobs(self.accounts, self._services())

    @http("GET", "/console/admin/users")
    def console_users(self, request):
        return console_admin.users_page(self._console(request))

    @http("POST", "/console/admin/users")
    def console_create_user(self, request):
        return console_admin.create_user(self._console(request))

    @http("GET", "/console/admin/users/<string:user_id>")
    def console_user(self, request, user_id):
        return console_admin.user_page(self._console(request), user_id)

    @http("POST", "/console/admin/users/<string:user_id>/<string:action>")
    def console_change_user(self, request, user_id, action):
        return console_admin.change_user(self._console(request), user_id, action)

    @http("GET", "/console/admin/estates")
    def console_estates(self, request):
        return console_admin.estates_page(self._console(request))

    @http("POST", "/console/admin/estates")
    def console_register_estate(self, request):
        return console_admin.register_estate(self._console(request))

    @http("GET", "/console/admin/estates/<string:estate_id>")
    def console_estate(self, request, estate_id):
        return console_admin.estate_page(self._console(request), estate_id)

    @http("POST", "/console/admin/estates/<string:estate_id>")
    def console_update_estate(self, request, estate_id):
        return console_admin.update_estate(self._console(request), estate_id)

    @http("GET", "/static/<path:name>")
    def static(self, request, name):
        response = pages.static_file(name)
        if response is None:
            raise Problem(404, "no such file")
        return response

    # RPC, for the huifang-users command --------------------------------------------------

    @rpc
    @idempotent
    def create_user(self, data):
        return self.accounts.create_user(data, None, self._departments())

    @rpc
    def list_users(self, filters=None):
        return self.accounts.list_users(filters or {})

    @rpc
    @idempotent
    def update_user(self, username, data):
        user = self.accounts.find_by_username(username)
        return self.accounts.update_user(user["id"], data, None, self._departments())

    @rpc
    def ping(self):
        return {"service": self.name}

    # helpers -------------------------------------------------------------------------

    def _body(self, request):
        return json_body(request, max_body(self.config))

    def _owner(self, request):
        request.max_content_length = max_body(self.config)
        return owner.OwnerContext(self._services(), self.accounts.repository,
                                  self.accounts.settings.secret, self.accounts.clock.now(),
                                  request)

    def _console(self, request):
        request.max_content_length = max_body(self.config)
        return console.ConsoleContext(self.accounts, self._services(), max_body(self.config),
                                      self.accounts.clock.now(), request)

    def _services(self):
        return api.Services({name: getattr(self, name) for name in SERVICES})

    def _departments(self):
        return known_departments(self._services())

    def _admin(self, request):
        actor, _ = self.accounts.authenticate(request)
        if not allowed(actor.roles, "users.manage"):
            raise Problem(403, "only an administrator manages accounts")
        return actor
