"""Resuming (issue 14, item 5): the attendee finds their personal link on the page; it brings
them back to the lesson they were on; a broken link says so; joining again under a taken name
offers the way back instead of a second attendee."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.browser import LAPTOP, join
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


def test_the_resume_link_is_on_the_page_and_lands_where_the_attendee_was(
    browser: Any, live_server: LiveServer
) -> None:
    laptop = browser.new_context(viewport=LAPTOP)
    phone = browser.new_context(viewport=LAPTOP)
    try:
        page = laptop.new_page()
        join(page, live_server.url, "Linus")
        page.click(".lesson-pager a.next")
        page.wait_for_url("**/lessons/images-and-dockerfiles")
        page.click(".me summary")
        link = page.locator("#resume-link")
        assert link.is_visible()
        resume_url = link.input_value()
        assert resume_url.startswith(live_server.url + "/resume/")
        page.click(".copy-resume")
        assert page.locator(".copy-resume").inner_text() == "Copied"

        other = phone.new_page()
        other.goto(resume_url)
        other.wait_for_url("**/lessons/images-and-dockerfiles")
        assert other.locator(".who").inner_text() == "Linus"
    finally:
        laptop.close()
        phone.close()


def test_a_broken_resume_link_says_what_to_do(browser: Any, live_server: LiveServer) -> None:
    page = browser.new_page(viewport=LAPTOP)
    try:
        response = page.goto(live_server.url + "/resume/not-a-key")
        assert response is not None and response.status == 404
        assert "This resume link is not valid" in page.locator(".error-page").inner_text()
    finally:
        page.close()


def test_joining_again_under_a_taken_name_offers_the_way_back(
    browser: Any, live_server: LiveServer
) -> None:
    first = browser.new_context(viewport=LAPTOP)
    second = browser.new_context(viewport=LAPTOP)
    try:
        join(first.new_page(), live_server.url, "Ada")
        page = second.new_page()
        page.goto(live_server.url + "/")
        page.fill("#name", "Ada")
        page.click("form.join button[type=submit]")
        offer = page.locator("#same-name")
        offer.wait_for()
        assert "already joined" in offer.inner_text()
        assert "resume link" in offer.inner_text()
        assert page.evaluate("fetch('/api/me').then(r => r.status)") == 401  # nobody made yet
        page.click("#same-name button:has-text('Join as “Ada (2)”')")
        page.wait_for_url("**/lessons/*")
        assert page.locator(".who").inner_text() == "Ada (2)"
    finally:
        first.close()
        second.close()
