"""The admin UI in a real browser: headless Chromium driven by selenium over a live server.

An operator logs in through the login form, opens an instance, disables it with the button on
its page, and sees the result on the page, in the database and in the list; and cancels a
running bulk job from the jobs list with the admin action.

Needs Debian's ``chromium`` and ``chromium-driver``. Without them the test is skipped, unless CI
is set: then it fails, so a CI image without a browser cannot pass silently.
"""

import os
import shutil
import urllib.request

import pytest

from conftest import IN_CI, SA_CONFIGURATION, SIM_SA_SECRET, make_instance, make_tenant

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = "/tmp/admin-instance.png"
PASSWORD = "operator-password-0123456789"
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI is set but the browser test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -r requirements-dev.txt)")
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} not found (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(browser, live_server, django_user_model) -> None:
    """Through the login form, as a new superuser."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    django_user_model.objects.create_superuser("operator", "operator@example.test", PASSWORD)
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys("operator")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    WebDriverWait(browser, 15).until(ec.presence_of_element_located((By.ID, "logout-form")))


def test_operator_disables_an_instance_from_its_page(
    live_server, transactional_db, browser, django_user_model
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from instances.models import Instance

    tenant = make_tenant()
    instance, token = make_instance(tenant, name="Checkout analytics", tags=["prod"])
    wait = WebDriverWait(browser, 15)

    # The admin's stylesheets are served by the live server (staticfiles handler).
    with urllib.request.urlopen(f"{live_server.url}/static/admin/css/base.css") as response:
        assert response.status == 200

    log_in(browser, live_server, django_user_model)

    # The instances list, then the instance.
    browser.get(f"{live_server.url}/admin/instances/instance/")
    browser.find_element(By.LINK_TEXT, "Checkout analytics").click()
    wait.until(ec.presence_of_element_located((By.ID, "instance-disable-form")))
    page = browser.page_source
    assert "********" in page
    for secret in (token, SIM_SA_SECRET, SA_CONFIGURATION["username"]):
        assert secret not in page

    # Disable it with the button on its page.
    browser.find_element(By.CSS_SELECTOR, "#instance-disable-form button").click()
    message = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success"))
    )
    assert "is now disabled" in message.text
    assert browser.find_elements(By.ID, "instance-enable-form")  # the button flipped
    assert browser.find_element(By.CSS_SELECTOR, ".field-state .readonly").text == "disabled"
    assert Instance.objects.get(pk=instance.pk).disabled
    # The whole page, masked configuration included.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, max(900, min(int(height) + 150, 4000)))
    browser.save_screenshot(SCREENSHOT)
    browser.set_window_size(1280, 900)

    # The list shows it disabled.
    browser.get(f"{live_server.url}/admin/instances/instance/")
    row = browser.find_element(By.XPATH, "//tr[.//a[text()='Checkout analytics']]")
    assert row.find_element(By.CSS_SELECTOR, "td.field-state").text == "disabled"


def test_operator_cancels_a_running_bulk_job_from_the_list(
    live_server, transactional_db, browser, django_user_model
):
    from django.utils import timezone
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from bulk.models import BulkJob
    from tests.test_bulk_runner import make_job

    tenant = make_tenant()
    instance, _ = make_instance(tenant, name="Checkout analytics")
    job = make_job(
        instance,
        status=BulkJob.Status.RUNNING,
        records_count=12000,
        progress_done=2,
        progress_total=7,
        started_at=timezone.now(),
    )
    wait = WebDriverWait(browser, 15)
    log_in(browser, live_server, django_user_model)

    browser.get(f"{live_server.url}/admin/bulk/bulkjob/")
    row = browser.find_element(By.XPATH, f"//tr[.//a[text()='{job.pk}']]")
    assert row.find_element(By.CSS_SELECTOR, "td.field-status").text == "Running"
    assert row.find_element(By.CSS_SELECTOR, "td.field-progress").text == (
        "12,000 records · 2/7 days"
    )

    row.find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("cancel_jobs")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    message = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success"))
    )
    assert f"Job #{job.pk} cancelled." in message.text
    row = browser.find_element(By.XPATH, f"//tr[.//a[text()='{job.pk}']]")
    assert row.find_element(By.CSS_SELECTOR, "td.field-status").text == "Cancelled"
    job.refresh_from_db()
    assert job.status == BulkJob.Status.CANCELLED
    assert job.status_message == "Cancelled by an operator."
