"""The web page in a real headless Chromium: submit a prompt, watch the progress bar, play the video.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` Python package (its own browser downloads
are not used). The screenshot goes to tests/artifacts/serve_page.png.
"""

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from tenku.serve.app import create_app  # noqa: E402
from tenku.serve.background import serve_in_thread  # noqa: E402
from fake_pipeline import FakePipeline  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"


@pytest.fixture
def page(tmp_path, request):
    token = getattr(request, "param", None)
    app = create_app(FakePipeline(step_seconds=0.1), tmp_path / "data", token=token)
    with serve_in_thread(app) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        outside = []  # every request must go to our server: nothing from the internet
        page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:")) else outside.append(r.url))
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        yield page
        browser.close()
        assert not outside, outside
        assert not errors, errors


def test_page_submits_shows_progress_and_plays_video(page):
    page.wait_for_selector("#mode option[value=text]", state="attached")
    page.fill("#prompt", "a red ball bounces on a wooden floor")
    page.select_option("#frames", "17")
    page.fill("#steps", "8")
    page.click("#submit")
    card = page.locator(".job").first
    card.wait_for()
    # The bar moves: we see a running state with a step before the job is done.
    page.wait_for_function("() => { const b = document.querySelector('.job .bar');"
                           " return b && b.value > 0 && b.value < b.max; }", timeout=15000)
    page.wait_for_selector(".job[data-state=done] video", timeout=20000)
    assert page.eval_on_selector(".job .bar", "b => b.value === b.max && b.max === 8")
    video = ".job video"
    page.wait_for_function(f"() => document.querySelector('{video}').readyState >= 2", timeout=10000)
    t0 = page.eval_on_selector(video, "v => v.currentTime")
    page.wait_for_timeout(600)
    state = page.eval_on_selector(video, "v => ({t: v.currentTime, err: v.error && v.error.code, paused: v.paused,"
                                         " w: v.videoWidth, loop: v.loop, muted: v.muted, controls: v.controls})")
    assert state["err"] is None and not state["paused"] and state["t"] != t0, state
    assert state["w"] == 32 and state["loop"] and state["muted"] and state["controls"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve_page.png"), full_page=True)
    print(f"screenshot: {ARTIFACTS / 'serve_page.png'}")


def test_page_shows_why_input_is_refused_and_one_frame_as_image(page):
    page.wait_for_selector("#mode option[value=text]", state="attached")
    page.fill("#prompt", "a still")
    page.evaluate("() => { const w = document.getElementById('width'); w.value = '40'; }")
    page.click("#submit")
    page.wait_for_function("() => document.getElementById('form-error').textContent.includes('multiple of 16')")
    assert page.locator(".job").count() == 0
    page.fill("#width", "32")
    page.select_option("#frames", "1")
    page.click("#submit")
    page.wait_for_selector(".job[data-state=done] img", timeout=20000)
    assert page.eval_on_selector(".job img", "i => i.complete && i.naturalWidth") == 32
    # Upload fields follow the mode.
    page.select_option("#mode", "connect")
    assert page.is_visible("#video_a") and not page.is_visible("#image")


def test_page_cancels_a_running_job(page):
    page.wait_for_selector("#mode option[value=text]", state="attached")
    page.fill("#prompt", "a long one")
    page.fill("#steps", "100")
    page.click("#submit")
    page.wait_for_selector(".job[data-state=running] .cancel", timeout=15000)
    page.click(".job .cancel")
    page.wait_for_selector(".job[data-state=cancelled]", timeout=15000)
    assert not page.is_visible(".job .cancel") and page.locator(".job video").count() == 0


@pytest.mark.parametrize("page", ["s3cret"], indirect=True)
def test_page_with_a_token_asks_for_it_and_plays_the_result(page):
    page.wait_for_selector("#token-bar", state="visible")
    page.fill("#token", "s3cret")
    page.click("#token-save")
    page.wait_for_selector("#mode option[value=text]", state="attached")
    page.fill("#prompt", "with a token")
    page.click("#submit")
    page.wait_for_selector(".job[data-state=done] video", timeout=20000)
    page.wait_for_function("() => document.querySelector('.job video').readyState >= 2", timeout=10000)
    assert page.eval_on_selector(".job video", "v => v.src.startsWith('blob:') && v.error === null")


def test_page_offers_a_minute_and_takes_a_storyboard(page):
    page.wait_for_selector("#mode option[value=text]", state="attached")
    assert page.eval_on_selector("#frames option[value='480']", "o => o.textContent") == "60 s (480 frames, sliding window)"
    page.fill("#prompt", "0-1s: a red ball rolls right; 1-2s: a blue square falls")
    page.click("#submit")  # the default duration: the storyboard's own length
    page.wait_for_selector(".job[data-state=done] video", timeout=20000)
    assert "16 frames" in page.text_content(".job .meta")
    page.fill("#prompt", "a red ball rolls right")
    page.select_option("#frames", "480")
    page.click("#submit")
    page.wait_for_function("() => document.querySelectorAll('.job[data-state=done]').length === 2", timeout=20000)
    assert "480 frames" in page.text_content(".job .meta")  # the newest card comes first
    page.select_option("#mode", "extend")  # only text-to-video slides a window
    assert page.eval_on_selector("#frames option[value='480']", "o => o.disabled") and page.input_value("#frames") == ""
