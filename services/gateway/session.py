"""The browser session: the login token in an HttpOnly, SameSite=Strict cookie.

One place for the cookie's attributes, used by the API's browser login
(``/api/v1/auth/session``) and by the staff console's login page. Script cannot read
the cookie; other sites cannot make the browser send it; state-changing requests made
with it carry the CSRF token as well (``accounts.Accounts.authenticate``).
"""
from werkzeug.wrappers import Response

from services.gateway.accounts import SESSION_COOKIE


def start(response: Response, login: dict, secure: bool) -> Response:
    """``response`` setting the cookie of ``login`` (``Accounts.login``'s answer)."""
    response.set_cookie(SESSION_COOKIE, login["access_token"], max_age=login["expires_in"],
                        httponly=True, samesite="Strict", path="/", secure=secure)
    return response


def end(response: Response) -> Response:
    """``response`` removing the cookie (the token itself is revoked by ``Accounts.logout``)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict")
    return response
