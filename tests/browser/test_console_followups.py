"""A follow-up of an unsatisfied revisit in a real browser (phone size, then a desk's): a
supervisor goes from the revisit worklist to the follow-ups, opens the one a community
activity's revisit opened, and records the measures with the person responsible. Every
state is screenshotted and checked with axe-core."""
import pytest

from tests.browser.test_console import desk_check
from tests.browser.test_console_revisits import PASSWORD, console_errors, log_in
from tests.helpers import (
    households_by_room,
    register_estate,
    staff_accounts,
    unsatisfied_followup,
)

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE = "br-followup"


@pytest.fixture(scope="module")
def followup(gateway):
    register_estate(gateway, ESTATE, "锦绣苑", households_by_room(
        ESTATE, "2", "1", (("601", "吴业主", "13655556666"),)))
    token = staff_accounts(gateway, (("fu.head", "supervisor", [ESTATE], "孙主管"),),
                           PASSWORD)["fu.head"]["token"]
    return unsatisfied_followup(gateway, token, ESTATE, f"{ESTATE}-601", "重阳节敬老活动",
                                "活动通知太晚，老人没赶上", "very_unsatisfied")["followup"]


def test_measures_are_recorded_on_the_follow_up_page(gateway, followup, browser):
    page = browser
    console_errors(page)
    log_in(page, gateway, "fu.head", "/console/revisits/")
    page.wait_for_heading("回访待办")
    page.click("#followups-link")
    page.wait_for_heading("回访不满意跟进")
    assert "活动通知太晚" in page.text(f"#followup-{followup['id']}")
    page.check("followups")
    desk_check(page, "followups")

    page.click(f"#followup-{followup['id']} a.number")
    page.wait_for_heading("社区活动回访不满意跟进")
    assert page.text("#owner-words") == "活动通知太晚，老人没赶上"
    page.check("followup")
    page.type("#measures-measures", "活动通知提前一周张贴并电话告知独居老人")
    page.type("#measures-responsible", "客服郑小红")
    page.click("#submit-measures")
    page.wait_for(lambda: page.find_all("#done"), "the measures recorded")
    assert "客服郑小红" in page.text("#measures")
    assert page.find_all("#form-answer")
    page.check("measures-recorded")
    desk_check(page, "measures-recorded")
    assert console_errors(page) == []
