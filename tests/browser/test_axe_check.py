"""The accessibility check itself: axe-core injected past a page's CSP finds what it
must, in both browsers, so a page with no finding has truly been checked."""
import pytest

pytestmark = pytest.mark.browser

# low contrast, a button with no name, an image with no text: serious and critical
BAD_PAGE = ('data:text/html;charset=utf-8,<!DOCTYPE html><html lang="zh-CN"><head>'
            '<title>t</title></head><body><main><h1>测试</h1>'
            '<p style="color:%23bbb;background:%23fff">浅灰色的字</p>'
            '<button></button><img src="data:,"></main></body></html>')


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_axe_finds_serious_and_critical_problems(request, javascript):
    page = request.getfixturevalue("browser" if javascript else "browser_nojs")
    page.open(BAD_PAGE)
    with pytest.raises(AssertionError) as failed:
        page.assert_accessible("self-check")
    found = str(failed.value)
    for rule in ("color-contrast", "button-name", "image-alt"):
        assert rule in found, found
