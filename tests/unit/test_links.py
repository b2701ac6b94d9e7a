"""Links in owners' messages (shared/links.py): tokens, addresses, the start-up warning."""
import logging

import pytest

from shared import links
from shared.errors import InvalidInput
from shared.schemas.base import require_token


def test_a_token_is_128_random_bits_and_passes_the_token_check():
    tokens = {links.new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(token) == 22 and require_token(token) == token for token in tokens)


def test_a_link_is_the_base_the_page_and_the_token():
    assert links.owner_link("https://wy.huifang.cn/", "r", "tok") == "https://wy.huifang.cn/r/tok"
    assert links.public_base_url({}) == "http://127.0.0.1:8000"
    assert links.public_base_url({"PUBLIC_BASE_URL": "https://wy.huifang.cn/"}) == \
        "https://wy.huifang.cn"


@pytest.mark.parametrize("url", ["https://wy.example.com", "https://survey.example.com/s/",
                                 "http://example.org", "http://127.0.0.1:8000",
                                 "http://localhost:8000", "http://[::1]:8000", "not a url"])
def test_a_base_owners_cannot_open_is_warned_of_outside_development(url, caplog):
    caplog.set_level(logging.WARNING)
    assert links.warn_if_unreachable("PUBLIC_BASE_URL", url, None)
    assert links.warn_if_unreachable("PUBLIC_BASE_URL", url, "production")
    assert "PUBLIC_BASE_URL" in caplog.text and "owners cannot open" in caplog.text
    assert not links.warn_if_unreachable("PUBLIC_BASE_URL", url, "development")


@pytest.mark.parametrize("url", ["https://wy.huifang.cn", "https://notexample.com/s/",
                                 "http://10.0.0.8:8000"])
def test_a_real_address_is_not_warned_of(url, caplog):
    assert not links.warn_if_unreachable("PUBLIC_BASE_URL", url, None)
    assert caplog.text == ""


@pytest.mark.parametrize("token", [None, 12, "short", "has space in it xx", "a" * 65,
                                   "tok$ne-0123456789ab", {"$ne": "x"}])
def test_a_malformed_token_is_invalid_input_on_token(token):
    with pytest.raises(InvalidInput) as refused:
        require_token(token, "revisit")
    assert refused.value.errors == {"token": ["not a valid revisit token"]}
