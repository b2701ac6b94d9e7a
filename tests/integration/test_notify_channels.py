"""The shipped channels against real servers on this machine: an SMTP server
(aiosmtpd) that receives the mail — in the clear, after STARTTLS and over
implicit TLS, with a certificate made here — and an HTTP SMS gateway
(http.server) that records each request and answers what the test tells it
to — errors and timeouts included. Then the service's retries and fallback
across both."""
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nameko.testing.services import worker_factory

from services.notify.channels import (
    AddressError,
    ChannelConfigError,
    ChannelError,
    EmailChannel,
    HttpSmsChannel,
    Message,
)
from services.notify.repository import NotifyRepository
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from shared.clock import FrozenClock
from shared.envelope import new_event, parse_event
from tests.helpers import embedded, intake_with_contact

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)   # 10:30 in Shanghai
PHONE = "13812345678"
EMAIL = "zhang.san@example.com"
MESSAGE = Message(text="【阳光花园物业】非常抱歉给您带来不便。", subject="您的投诉已登记",
                  sender_name="阳光花园物业", delivery_id="ev-1:complaint_received")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# a real SMTP server ----------------------------------------------------------------------

class Mailbox:
    """aiosmtpd handler: keeps each message; ``replies`` answer the next RCPT TOs instead."""

    def __init__(self):
        self.messages, self.replies, self.logins = [], [], []
        self.encrypted = []   # per message: whether it came over TLS

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.replies:
            return self.replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 Message accepted"


def start_smtp_server(**tls):
    """A mailbox behind aiosmtpd on a free port; ``tls``: Controller's TLS arguments."""
    mailbox = Mailbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"notify", b"s3cret")
        mailbox.logins.append((auth_data.login, ok))
        return AuthResult(success=ok, handled=False)   # a refusal answers 535

    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=authenticate, **{"auth_require_tls": False, **tls})
    controller.start()
    mailbox.port, mailbox.controller = controller.port, controller
    return mailbox


@pytest.fixture
def smtp_server():
    mailbox = start_smtp_server()
    yield mailbox
    mailbox.controller.stop()


def email_settings(server, **changes):
    return {"host": "127.0.0.1", "port": server.port, "security": "none",
            "username": "notify", "password": "s3cret", "sender": "notice@wy.example.cn",
            "timeout": 5, **changes}


def test_email_is_received_by_the_smtp_server_signed_and_in_chinese(smtp_server):
    EmailChannel(email_settings(smtp_server)).send(EMAIL, MESSAGE)

    [(sender, recipients, mail)] = smtp_server.messages
    assert (sender, recipients) == ("notice@wy.example.cn", [EMAIL])
    assert smtp_server.logins == [(b"notify", True)]
    assert mail["Subject"] == "您的投诉已登记"
    assert mail["From"].addresses[0].display_name == "阳光花园物业"
    assert mail["To"] == EMAIL
    assert mail["X-Huifang-Delivery"] == "ev-1:complaint_received"
    assert mail["Date"].datetime.tzinfo is not None                 # RFC 5322's required Date
    assert mail["Message-ID"].endswith("@wy.example.cn>")
    assert mail.get_content().strip() == MESSAGE.text


@pytest.mark.parametrize("reply, retryable", [
    ("451 4.3.0 Mailbox temporarily unavailable", True),
    ("550 5.1.1 No such user zhang.san@example.com", False),
])
def test_a_refused_recipient_is_a_channel_error_that_says_if_a_retry_helps(
        smtp_server, reply, retryable):
    smtp_server.replies = [reply]
    with pytest.raises(ChannelError) as error:
        EmailChannel(email_settings(smtp_server)).send(EMAIL, MESSAGE)
    assert error.value.retryable is retryable
    assert reply.split()[0] in str(error.value)
    assert smtp_server.messages == []


def test_a_wrong_password_is_refused_without_retry(smtp_server):
    with pytest.raises(ChannelError) as error:
        EmailChannel(email_settings(smtp_server, password="wrong")).send(EMAIL, MESSAGE)
    assert not error.value.retryable and "login refused" in str(error.value)


def test_an_unreachable_smtp_server_is_worth_a_retry():
    channel = EmailChannel({"host": "127.0.0.1", "port": free_port(), "sender": "a@b.cn",
                            "timeout": 2})
    with pytest.raises(ChannelError) as error:
        channel.send(EMAIL, MESSAGE)
    assert error.value.retryable and "unreachable" in str(error.value)


@pytest.mark.parametrize("address", ["zhang@", "13812345678", ""])
def test_a_malformed_email_address_is_refused_before_connecting(address):
    channel = EmailChannel({"host": "127.0.0.1", "port": free_port(), "sender": "a@b.cn"})
    with pytest.raises(AddressError):
        channel.send(address, MESSAGE)


# SMTP over TLS: a private CA made here, a server certificate it signs ----------------------

def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(subject, issuer, public_key, signing_key, *, ca, names=()):
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _pem(path, *items):
    path.write_bytes(b"".join(
        item.public_bytes(serialization.Encoding.PEM) if isinstance(item, x509.Certificate)
        else item.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        for item in items))
    return str(path)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA bundle the channel may trust, and server contexts: one for 127.0.0.1 signed
    by that CA, one signed by it for another host name."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key = _key()
    ca = _certificate("Huifang test CA", "Huifang test CA", ca_key.public_key(), ca_key, ca=True)

    def server_context(name, *names):
        key = _key()
        leaf = _certificate(name, "Huifang test CA", key.public_key(), ca_key, ca=False,
                            names=names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(_pem(folder / f"{name}.pem", leaf, key))
        return context

    return {
        "ca_file": _pem(folder / "ca.pem", ca),
        "local": server_context("127.0.0.1", x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                x509.DNSName("localhost")),
        "elsewhere": server_context("mail.elsewhere.test", x509.DNSName("mail.elsewhere.test")),
    }


@pytest.fixture
def tls_servers(certificates):
    """Start SMTP servers that speak TLS; each is stopped after the test."""
    started = []

    def start(context="local", **tls):
        mailbox = start_smtp_server(**{key: certificates[context] if value == "cert" else value
                                       for key, value in tls.items()})
        started.append(mailbox)
        return mailbox
    yield start
    for mailbox in started:
        mailbox.controller.stop()


def starttls_server(start, context="local"):
    """STARTTLS required before anything else, and no login in the clear."""
    return start(context, tls_context="cert", require_starttls=True, auth_require_tls=True)


def test_starttls_upgrades_the_connection_before_login_and_the_mail_arrives_encrypted(
        tls_servers, certificates):
    server = starttls_server(tls_servers)
    channel = EmailChannel(email_settings(server, security="starttls",
                                          ca_file=certificates["ca_file"]))
    channel.send(EMAIL, MESSAGE)

    [(sender, recipients, mail)] = server.messages
    assert (sender, recipients) == ("notice@wy.example.cn", [EMAIL])
    assert server.encrypted == [True]
    assert server.logins == [(b"notify", True)]    # the server offers AUTH only after TLS
    assert mail.get_content().strip() == MESSAGE.text


def test_implicit_tls_delivers_the_mail_encrypted(tls_servers, certificates):
    server = tls_servers(ssl_context="cert")   # (aiosmtpd's auth_require_tls knows only STARTTLS)
    EmailChannel(email_settings(server, security="ssl", ca_file=certificates["ca_file"])).send(
        EMAIL, MESSAGE)

    assert server.encrypted == [True] and server.logins == [(b"notify", True)]
    [(_, recipients, mail)] = server.messages
    assert recipients == [EMAIL] and mail["Subject"] == MESSAGE.subject


@pytest.mark.parametrize("context, trusted", [
    ("local", False),        # signed by a CA the channel was not told to trust
    ("elsewhere", True),     # trusted CA, but the certificate names another host
])
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_certificate_that_cannot_be_trusted_is_refused_without_retry_and_nothing_is_sent(
        tls_servers, certificates, context, trusted, security):
    if security == "starttls":
        server = starttls_server(tls_servers, context)
    else:
        server = tls_servers(context, ssl_context="cert")
    settings = email_settings(server, security=security,
                              **({"ca_file": certificates["ca_file"]} if trusted else {}))
    with pytest.raises(ChannelError) as error:
        EmailChannel(settings).send(EMAIL, MESSAGE)
    assert not error.value.retryable and "certificate not trusted" in str(error.value)
    assert server.messages == [] and server.logins == []


def test_without_tls_the_password_is_never_sent_to_a_server_that_wants_tls_first(
        tls_servers):
    server = tls_servers(tls_context="cert", auth_require_tls=True)   # STARTTLS offered, optional
    with pytest.raises(ChannelError) as error:
        EmailChannel(email_settings(server, security="none")).send(EMAIL, MESSAGE)
    assert not error.value.retryable and "AUTH" in str(error.value)
    assert server.logins == [] and server.messages == []


def test_starttls_against_a_server_that_does_not_offer_it_is_refused_without_retry(
        smtp_server, certificates):
    channel = EmailChannel(email_settings(smtp_server, security="starttls",
                                          ca_file=certificates["ca_file"]))
    with pytest.raises(ChannelError) as error:
        channel.send(EMAIL, MESSAGE)
    assert not error.value.retryable and "STARTTLS" in str(error.value)
    assert smtp_server.logins == [] and smtp_server.messages == []


def test_an_unreadable_ca_file_stops_the_start(tmp_path):
    with pytest.raises(ChannelConfigError, match="ca_file"):
        EmailChannel({"sender": "a@b.cn", "security": "starttls",
                      "ca_file": str(tmp_path / "missing.pem")})


# a local HTTP SMS gateway -----------------------------------------------------------------

class Gateway:
    """Records each request; answers from ``script`` ((status, body, delay seconds)), then 200."""

    def __init__(self):
        self.requests, self.script = [], []

    def answer(self):
        return self.script.pop(0) if self.script else (
            200, {"code": "OK", "message_id": f"m-{len(self.requests)}"}, 0)


@pytest.fixture
def sms_gateway():
    gateway = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            gateway.requests.append({"path": self.path, "headers": dict(self.headers),
                                     "json": json.loads(body)})
            status, reply, delay = gateway.answer()
            time.sleep(delay)
            payload = json.dumps(reply).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass   # the client gave up waiting (a timeout test)

        def log_message(self, *args):
            pass   # quiet: the test reads ``requests``

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}/v1/sms"
    yield gateway
    server.shutdown()
    server.server_close()


def sms_settings(gateway, **changes):
    return {"url": gateway.url, "headers": {"Authorization": "Bearer t0ken"},
            "body": {"mobile": "{phone}", "content": "{text}", "sign": "{signature}",
                     "parts": "{segments}", "meta": {"ref": "{delivery_id}"}},
            "success": {"field": "code", "value": "OK"}, "message_id_field": "message_id",
            "timeout": 0.5, **changes}


def test_sms_gateway_gets_the_json_body_template_filled_and_the_auth_header(sms_gateway):
    long_text = MESSAGE.text + "请于三日内答复。" * 8          # over 70 characters: 2 parts
    reference = HttpSmsChannel(sms_settings(sms_gateway)).send(
        PHONE, Message(long_text, sender_name="阳光花园物业", delivery_id="d-1"))

    [request] = sms_gateway.requests
    assert request["path"] == "/v1/sms"
    assert request["headers"]["Authorization"] == "Bearer t0ken"
    assert request["json"] == {"mobile": PHONE, "content": long_text, "sign": "阳光花园物业",
                               "parts": 2, "meta": {"ref": "d-1"}}
    assert reference == "m-1"


@pytest.mark.parametrize("answer, retryable, says", [
    ((503, {"error": "busy"}, 0), True, "503"),
    ((429, {"error": "slow down"}, 0), True, "429"),
    ((400, {"error": "bad mobile"}, 0), False, "refused: 400"),
    ((200, {"code": "isv.BLACK_KEY_CONTROL_LIMIT"}, 0), False, "BLACK_KEY"),
    ((200, {"code": "OK"}, 2), True, "timed out"),
])
def test_gateway_errors_and_timeouts_say_whether_a_retry_helps(sms_gateway, answer, retryable,
                                                               says):
    sms_gateway.script = [answer]
    with pytest.raises(ChannelError) as error:
        HttpSmsChannel(sms_settings(sms_gateway)).send(PHONE, MESSAGE)
    assert error.value.retryable is retryable and says in str(error.value)


def test_an_unreachable_gateway_is_worth_a_retry():
    channel = HttpSmsChannel({"url": f"http://127.0.0.1:{free_port()}/sms", "timeout": 1})
    with pytest.raises(ChannelError) as error:
        channel.send(PHONE, MESSAGE)
    assert error.value.retryable and "unreachable" in str(error.value)


@pytest.mark.parametrize("address", ["010-62345678", EMAIL, "1381234567"])
def test_sms_only_goes_to_mobile_numbers(sms_gateway, address):
    with pytest.raises(AddressError):
        HttpSmsChannel(sms_settings(sms_gateway)).send(address, MESSAGE)
    assert sms_gateway.requests == []


# the service: retries and fallback across the real servers ----------------------------------

@pytest.fixture
def notify(smtp_server, sms_gateway):
    clock = FrozenClock(NOW)
    intake = intake_with_contact({
        "household_id": "h-1", "estate_id": "e-1", "name": "张三", "phone": PHONE,
        "email": EMAIL, "preferred_channel": "sms"})
    repository = embedded(NotifyRepository)
    settings = NotifySettings({
        "NOTIFY_CHANNELS": ["sms_http", "email"],
        "NOTIFY_CHANNEL_SETTINGS": {"sms_http": sms_settings(sms_gateway),
                                    "email": email_settings(smtp_server)},
        "NOTIFY_RETRY_DELAYS_S": [30, 120],
        "NOTIFY_SIGNATURE": "阳光花园物业",
    })
    service = worker_factory(NotifyService, store=repository, clock=clock, intake=intake,
                             settings=settings)
    service.clock_ = clock
    return service


def complaint_registered():
    return parse_event(new_event("complaint_registered", "intake", "e-1", {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "channel": "hotline", "received_at": NOW,
        "first_response_due": NOW + timedelta(days=1), "reply_due": NOW + timedelta(days=3),
    }, NOW))


def test_a_busy_gateway_is_retried_with_back_off_and_the_sms_goes(notify, sms_gateway,
                                                                  smtp_server):
    sms_gateway.script = [(503, {"error": "busy"}, 0), (200, {"code": "OK"}, 1)]   # then a timeout
    notify.acknowledge_complaint([complaint_registered()])
    assert notify.list_deliveries()[0]["reason"] == "retry 1 on sms_http"
    notify.clock_.advance(timedelta(seconds=30))
    notify.dispatch_due()
    assert notify.list_deliveries()[0]["reason"] == "retry 2 on sms_http"
    notify.clock_.advance(timedelta(seconds=120))
    notify.dispatch_due()

    [delivery] = notify.list_deliveries()
    assert delivery["status"] == "sent" and delivery["channel"] == "sms_http"
    assert [a["error"] is None for a in delivery["attempts"]] == [False, False, True]
    assert delivery["attempts"][-1]["reference"] == "m-3"
    assert len(sms_gateway.requests) == 3 and smtp_server.messages == []
    assert sms_gateway.requests[-1]["json"]["content"].startswith("【阳光花园物业】非常抱歉")


def test_a_gateway_that_keeps_failing_falls_back_to_email_received_by_the_smtp_server(
        notify, sms_gateway, smtp_server):
    sms_gateway.script = [(503, {"error": "busy"}, 0)] * 3
    notify.acknowledge_complaint([complaint_registered()])
    for wait in (30, 120):
        notify.clock_.advance(timedelta(seconds=wait))
        notify.dispatch_due()

    [delivery] = notify.list_deliveries()
    assert delivery["status"] == "sent" and delivery["channel"] == "email"
    assert [a["channel"] for a in delivery["attempts"]] == ["sms_http"] * 3 + ["email"]
    [(_, recipients, mail)] = smtp_server.messages
    assert recipients == [EMAIL] and mail["Subject"] == "您的投诉已登记（编号 cmp-1）"
    assert mail.get_content().strip() == delivery["text"]


def test_when_both_servers_refuse_the_failure_is_recorded_and_announced(
        notify, sms_gateway, smtp_server):
    sms_gateway.script = [(400, {"error": "blocked number"}, 0)]
    smtp_server.replies = ["550 5.1.1 No such user"]
    notify.acknowledge_complaint([complaint_registered()])

    [delivery] = notify.list_deliveries()
    assert delivery["status"] == "failed" and "550" in delivery["error"]
    assert [a["retryable"] for a in delivery["attempts"]] == [False, False]
    store = notify.store
    [event] = [e for d in store.db.deliveries.find() for e in d["outbox"]]
    assert event["type"] == "notification_failed" and PHONE not in json.dumps(event)
