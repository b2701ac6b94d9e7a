"""The administration pages in a real browser (phone size, then a desk's), without
JavaScript: the administrator opens an account for a new clerk — a refused form first,
said on its fields — and reads the password generated, once; changes its roles; then
registers an estate, refused JSON said on the field first, and changes its record. Every
state is screenshotted and checked with axe-core."""
import pytest

from tests.browser.test_console import broken_nav_labels, desk_check
from tests.helpers import GatewayClient, households_by_room, register_estate

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE = "br-admin"


def test_the_administrator_opens_an_account_and_registers_an_estate(gateway, browser_nojs):
    page = browser_nojs
    register_estate(gateway, ESTATE, "翠湖苑", households_by_room(
        ESTATE, "1", "1", (("101", "业主", "13500001111"),)), company="华南物业")
    page.log_in(gateway.url("/console/admin/users"), "admin", GatewayClient.ADMIN_PASSWORD)
    page.wait_for_heading("账号管理")
    assert page.find_all("#user-admin")
    # every item of the fullest top bar on a phone, each label on one line
    assert page.find_all(".nav a") and broken_nav_labels(page) == []
    page.check("users")
    desk_check(page, "users")

    # nothing ticked, a username that is none: said on the fields, nothing created
    page.type("#new-username", "Br Clerk")
    page.click("#create-user")
    page.wait_for(lambda: page.find_all("#user-errors"), "the refusal")
    assert page.find("#new-username").get_attribute("aria-describedby") == "new-username-error"
    assert page.find_all("#new-roles-error")
    page.check("user-refused")

    page.type("#new-username", "br.clerk")
    page.type("#new-display_name", "陈晓")
    page.click('label[for="new-role-cs_staff"]')
    page.type("#new-estates", ESTATE)
    page.click("#create-user")
    page.wait_for(lambda: page.find_all("#generated-password"), "the password generated")
    password = page.text("#generated-password")
    assert len(password) >= 10
    page.check("user-created")
    gateway.login("br.clerk", password)

    page.click('label[for="profile-role-supervisor"]')
    page.click("#submit-profile")
    # the page before showed its own #done (the account made): wait for this form's
    page.wait_for(lambda: page.url.endswith("?done=profile") and page.find_all("#done"),
                  "the roles saved")
    assert "客服主管" in page.text("#roles") and "客服助理" in page.text("#roles")
    assert password not in page.text()
    page.check("user-changed")
    desk_check(page, "user-changed")

    page.click("#nav-estates")
    page.wait_for_heading("小区档案")
    assert "翠湖苑" in page.text(f"#estate-{ESTATE}")
    page.check("estates")
    page.type("#new-estate_id", "br-admin-2")
    page.type("#new-name", "翠湖苑二期")
    page.type("#new-policy", "{reply_days: 5")
    page.click("#register-estate")
    page.wait_for(lambda: page.find_all("#new-policy-error"), "the refused JSON")
    assert page.find("#new-policy").get_attribute("aria-invalid") == "true"
    page.check("estate-refused")
    page.type("#new-policy", '{"reply_days": 5}')
    page.click("#register-estate")
    page.wait_for_heading("翠湖苑二期")
    assert '"reply_days": 5' in page.text("#estate-policy")
    page.type("#edit-region", "天河片区")
    page.click("#submit-estate")
    page.wait_for(lambda: page.url.endswith("?done=update") and page.find_all("#done"),
                  "the record saved")
    assert page.text("#estate-region") == "天河片区"
    page.check("estate")
    desk_check(page, "estate")
