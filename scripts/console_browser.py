#!/usr/bin/env python3
"""Drives StreamGate's web console in a real browser: Playwright (PyPI) with Debian's chromium, no
browser download. Tests/IntegrationTests/ConsoleTests.swift starts the stack (redis-server, a farm
of workers, `streamgate serve`, a local chain) and runs this with one JSON argument:

  {"base": "http://localhost:PORT", "api_key", "clip", "long_clip", "asset", "policy",
   "owner_key", "stranger_key", "screenshots"}

Each step's observations go into one JSON object printed on the last line; the Swift test judges
them. A step that cannot go on raises, and the error is reported as {"error": …} (exit 1).
Screenshots of every page go to `screenshots` (not committed), so a broken layout is seen.
"""
import json
import sys
import time

from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 60_000


def wallet_shim(address):
    """An EIP-1193 provider as a wallet extension injects it; signing goes to `sgSign`, which
    Playwright binds to eth-account in this process (the key never enters the page)."""
    return """
    window.ethereum = {
      isStreamGateTestWallet: true,
      async request({ method, params }) {
        if (method === "eth_requestAccounts" || method === "eth_accounts") return ["%s"];
        if (method === "eth_chainId") return "0x7a69";
        if (method === "personal_sign") return await window.sgSign(params[0], params[1]);
        throw Object.assign(new Error("unsupported " + method), { code: 4200 });
      },
    };
    """ % address.lower()


def viewer(browser, key, config, name, results):
    """Opens the asset's viewer page with a wallet holding `key`, connects and signs in."""
    account = Account.from_key(key)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.expose_function(
        "sgSign",
        lambda message_hex, address: "0x" + account.sign_message(encode_defunct(hexstr=message_hex)).signature.hex().removeprefix("0x"),
    )
    page.add_init_script(wallet_shim(account.address))
    page.goto(f"{config['base']}/watch/{config['asset']}")
    page.get_by_role("button", name="Connect wallet and sign in").click()
    page.wait_for_function(
        "() => document.querySelector('#player').currentTime > 1 || document.querySelector('#refusal').textContent.length > 0",
        timeout=TIMEOUT_MS,
    )
    results[name] = page.evaluate(
        """() => { const v = document.querySelector('#player');
          return { current_time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames,
                   refusal: document.querySelector('#refusal').textContent, src: v.currentSrc } }"""
    )
    page.screenshot(path=f"{config['screenshots']}/{name}.png", full_page=True)
    context.close()


def main():
    config = json.loads(sys.argv[1])
    results = {}
    shots = config["screenshots"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: dialog.accept())
        try:
            run(page, context, config, results, shots)
            viewer(browser, config["owner_key"], config, "watch_owner", results)
            viewer(browser, config["stranger_key"], config, "watch_stranger", results)
            finish(page, config, results)
        except Exception as error:  # reported whole: the Swift test prints it
            page.screenshot(path=f"{shots}/failure.png", full_page=True)
            results["error"] = f"{type(error).__name__}: {error}"
        results["page_errors"] = errors
        browser.close()
    print(json.dumps(results))
    return 1 if "error" in results else 0


def run(page, context, config, results, shots):
    base = config["base"]
    # Sign-in: a wrong key is refused in words; the right one opens the console.
    started = time.monotonic()
    page.goto(f"{base}/console/")
    page.get_by_label("API key").wait_for()
    results["first_paint_s"] = time.monotonic() - started
    page.screenshot(path=f"{shots}/sign-in.png", full_page=True)
    page.get_by_label("API key").fill("not-a-key-of-this-server")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => document.querySelector('#sign-in-error').textContent.length > 0")
    results["wrong_key"] = page.locator("#sign-in-error").inner_text()
    page.get_by_label("API key").fill(config["api_key"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation").wait_for()
    cookie = next(c for c in context.cookies() if c["name"] == "streamgate_session")
    results["cookie"] = {"http_only": cookie["httpOnly"], "same_site": cookie["sameSite"], "readable_by_page": "streamgate_session" in page.evaluate("document.cookie")}
    # A change without the session's CSRF token is refused, even from the console's own origin.
    results["change_without_csrf"] = page.evaluate(
        "async () => (await fetch('/v1/farms/default', {method: 'PUT', body: JSON.stringify({workers: 9})})).status"
    )

    # Upload through tus, watch the job reach 100 % live (the jobs view never reloads its list).
    page.get_by_role("link", name="Upload", exact=True).click()
    page.get_by_label("Profile").fill("fast")
    page.get_by_label("Asset id").fill(config["asset"])
    page.locator("#upload-files").set_input_files(config["clip"])
    page.wait_for_function("() => document.querySelector('#uploads li')?.dataset.job")
    job = page.locator("#uploads li").first.get_attribute("data-job")
    results["uploaded_job"] = job
    page.screenshot(path=f"{shots}/upload.png", full_page=True)
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.wait_for_function("() => document.querySelector('#live-state').textContent === 'live'")
    row = page.locator(f"#job-{job}")
    row.wait_for()
    states, progress = [], []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = page.locator(f"#job-{job}").get_attribute("data-state")
        value = page.locator(f"#job-{job} progress").evaluate("p => p.value")
        if not states or states[-1] != state:
            states.append(state)
        if not progress or progress[-1] != value:
            progress.append(value)
        if state in ("succeeded", "failed", "dead", "cancelled"):
            break
        time.sleep(0.05)
    results["job_states"], results["job_progress"] = states, progress
    results["job_row"] = page.locator(f"#job-{job}").inner_text()
    page.screenshot(path=f"{shots}/jobs.png", full_page=True)

    # The asset: listed with its poster, played in <video>, frames decoded, storyboard previews.
    page.get_by_role("link", name="Assets", exact=True).click()
    page.locator("#assets").get_by_role("link", name=config["asset"]).click()
    page.wait_for_function("() => document.querySelectorAll('#renditions tbody tr').length > 0")
    page.evaluate("() => { const v = document.querySelector('#player'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 1.5", timeout=TIMEOUT_MS)
    results["console_player"] = page.evaluate(
        """() => { const v = document.querySelector('#player');
          return { current_time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth,
                   renditions: document.querySelectorAll('#renditions tbody tr').length, poster: v.poster } }"""
    )
    page.locator("#scrubber").hover()
    page.wait_for_function("() => !document.querySelector('#preview').hidden")
    results["storyboard_preview"] = page.locator("#preview").evaluate("p => getComputedStyle(p).backgroundImage")
    page.screenshot(path=f"{shots}/asset.png", full_page=True)

    # Its policy edited in the console, then read back through the API.
    page.get_by_label("Policy (JSON); empty: public").fill(config["policy"])
    page.get_by_role("button", name="Save policy").click()
    page.wait_for_function("() => /Policy .* saved/.test(document.querySelector('#notice').textContent)")
    results["policy_saved"] = page.locator("#notice").inner_text()
    results["policy_read_back"] = page.evaluate(
        f"async () => (await fetch('/v1/assets/{config['asset']}/policy')).status"
    )

    # A long upload whose connection drops on its second chunk: the upload resumes from the offset
    # the server reports. Its job's progress is seen moving live, then it is cancelled.
    patches = {"sent": 0, "dropped": 0}

    def drop_second_patch(route):
        if route.request.method == "PATCH":
            patches["sent"] += 1
            if patches["sent"] == 2:
                patches["dropped"] += 1
                return route.abort("connectionreset")
        return route.continue_()

    page.route("**/v1/uploads/*", drop_second_patch)
    page.get_by_role("link", name="Upload", exact=True).click()
    page.get_by_label("Profile").fill("default")
    page.get_by_label("Asset id").fill("console-long")
    page.locator("#upload-files").set_input_files(config["long_clip"])
    page.wait_for_function("() => document.querySelector('#uploads li')?.dataset.job && document.querySelector('#uploads li').dataset.job !== '%s'" % job)
    page.unroute("**/v1/uploads/*")
    results["upload_patches"] = dict(patches)
    long_job = page.locator("#uploads li").first.get_attribute("data-job")
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('#job-{long_job} progress')?.value; return v > 0 && v < 100; }}"
    )
    results["live_progress"] = page.locator(f"#job-{long_job} progress").evaluate("p => p.value")
    results["live_figures"] = page.locator(f"#job-{long_job} .progress-cell small").inner_text()
    page.screenshot(path=f"{shots}/jobs-running.png", full_page=True)
    page.locator(f"#job-{long_job}").get_by_role("button", name="Cancel").click()
    page.wait_for_function(f"() => document.querySelector('#job-{long_job}')?.dataset.state === 'cancelled'")
    results["cancelled_job"] = page.locator(f"#job-{long_job}").get_attribute("data-state")

    # The farm: 2 workers, scaled to 3, the third seen in the live list.
    page.get_by_role("link", name="Farm", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('#workers tbody tr').length === 2")
    results["workers_before"] = page.locator("#workers tbody tr").count()
    page.get_by_label("Workers of farm default").fill("3")
    page.locator("#farms").get_by_role("button", name="Set").click()
    page.wait_for_function("() => document.querySelectorAll('#workers tbody tr').length === 3", timeout=TIMEOUT_MS)
    results["workers_after"] = page.locator("#workers tbody tr").count()
    page.screenshot(path=f"{shots}/farm.png", full_page=True)

    # Health: live charts with figures from this server's /metrics.
    page.get_by_role("link", name="Health", exact=True).click()
    page.wait_for_function("() => [...document.querySelectorAll('.chart .value')].filter(v => v.textContent !== '–').length >= 3")
    results["health_values"] = page.locator(".chart .value").all_inner_texts()
    page.wait_for_function("() => document.querySelectorAll('#alerts li').length > 0")
    results["alerts"] = page.locator("#alerts").inner_text()
    page.screenshot(path=f"{shots}/health.png", full_page=True)

    # Every form control has a label; a phone's width needs no sideways scrolling.
    results["unlabelled_controls"] = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter(c => c.type !== 'hidden' && c.id !== 'upload-files' && !c.labels?.length && !c.getAttribute('aria-label'))
                 .map(c => c.id || c.name)"""
    )
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.locator(f"#job-{job}").wait_for()
    results["phone_overflow_px"] = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    page.screenshot(path=f"{shots}/jobs-phone.png", full_page=True)


def finish(page, config, results):
    """Retrying the cancelled upload says in words why it cannot be; withdrawing the asset stops
    its playback."""
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.locator("#job-state").select_option("cancelled")
    page.locator("#jobs").get_by_role("button", name="Retry").first.click()
    page.wait_for_function("() => document.querySelector('#notice.bad')?.textContent.length > 0")
    results["retry_refusal"] = page.locator("#notice").inner_text()
    page.goto(f"{config['base']}/console/#/asset/{config['asset']}")
    page.get_by_role("button", name="Withdraw asset").click()
    page.wait_for_function("() => location.hash === '#/assets'")
    results["after_withdraw"] = page.evaluate(f"async () => (await fetch('/v/{config['asset']}/master.m3u8')).status")


if __name__ == "__main__":
    sys.exit(main())
