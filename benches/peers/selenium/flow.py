"""Selenium (Python) reference peer for scripts/bench-flows.py: the sandbox flow of ../flow.json as
a team would hand-write it (find_element, send_keys, click, implicit waits), one chromedriver for
every session, Debian's Chromium."""
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from peer import CHROMEDRIVER, CHROMIUM, FLOW, run_peer  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

BASE = sys.argv[1]
SEL = FLOW["selectors"]

# Its own process group, so no browser outlives this script (see close()).
service = Service(CHROMEDRIVER, popen_kw={"start_new_session": True})
service.start()


def new_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLOW["chromium_flags"]:
        options.add_argument(flag)
    driver = webdriver.Remote(command_executor=service.service_url, options=options)
    driver.implicitly_wait(10)
    return driver


def run_flow(driver):
    driver.get(BASE + FLOW["entry_path"])
    banner = driver.find_elements(By.CSS_SELECTOR, SEL["cookie_reject"])
    if banner and banner[0].is_displayed():
        banner[0].click()
    driver.find_element(By.CSS_SELECTOR, SEL["email"]).send_keys(FLOW["username"])
    driver.find_element(By.CSS_SELECTOR, SEL["password"]).send_keys(FLOW["password"])
    driver.find_element(By.CSS_SELECTOR, SEL["login_submit"]).click()
    driver.find_element(By.CSS_SELECTOR, SEL["code"]).send_keys(FLOW["code"])
    driver.find_element(By.CSS_SELECTOR, SEL["code_submit"]).click()
    stores = [e.get_dom_attribute("data-branch-id") for e in driver.find_elements(By.CSS_SELECTOR, SEL["store"])]
    if stores != FLOW["stores"]:
        raise RuntimeError(f"stores {stores}")


def shutdown():
    pid = service.process.pid
    service.stop()
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


run_peer(new_driver, run_flow, lambda driver: driver.quit(), shutdown)
