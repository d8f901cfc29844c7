"""Two tabs in Chromium: a user erased in one tab cannot come back through the other (stale) tab."""

from __future__ import annotations

from helpers import query, settled, shown

USER = "tomas"


def test_a_user_erased_in_one_tab_stays_erased_in_the_other(page, server, data) -> None:
    assert query(data, "SELECT COUNT(*) FROM users WHERE id = ?", USER) == [(1,)]
    page.goto(f"{server}/?user={USER}")  # the stale tab, open on the chat
    page.get_by_placeholder("Tell me something about yourself…").wait_for()
    settled(page)

    other = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})  # the second tab erases
    other.goto(f"{server}/admin?user={USER}")
    other.get_by_role("button", name=f"Delete all data of '{USER}'").click()
    other.get_by_role("dialog").get_by_role("button", name="Delete").click()
    shown(other, f"Erased user '{USER}': ")
    assert query(data, "SELECT COUNT(*) FROM users WHERE id = ?", USER) == [(0,)]

    box = page.get_by_placeholder("Tell me something about yourself…")  # back in the stale tab, a person types
    box.click()
    box.fill("Am I still here?")
    box.press("Enter")
    shown(page, f"User '{USER}' was erased")
    settled(page)
    assert query(data, "SELECT COUNT(*) FROM users WHERE id = ?", USER) == [(0,)]  # not brought back
    assert query(data, "SELECT COUNT(*) FROM messages WHERE content = ?", "Am I still here?") == [(0,)]
    assert query(data, "SELECT COUNT(*) FROM jobs WHERE user_id = ?", USER) == [(0,)]
    assert f"user={USER}" not in page.url

    page.goto(f"{server}/memories?user={USER}")  # a stale link says so too, and shows another user
    shown(page, f"User '{USER}' was erased")
    other.close()
