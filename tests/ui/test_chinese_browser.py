"""The Chinese page in a real browser: a browser set to Chinese gets it, the language control and Gradio's Settings
switch it both ways (what the page was built with and what its events say), and the whole click-through works in
Chinese with Chinese data: preview, a short run, a chat answer, the adapter zip."""

from __future__ import annotations

import re
import time
import zipfile

import pytest

from tests.ui.browser import App, set_number, shot


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def test_the_language_follows_the_browser_and_switches_both_ways(browser, tmp_path):
    app = App(tmp_path / "home").start()
    try:
        context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(app.url)
        start, errors = page.locator("#train-start"), page.locator("#train-errors")
        page.get_by_role("tab", name="Train", exact=True).wait_for(timeout=60_000)
        _tab(page, "Train")
        assert start.inner_text().strip() == "Start training"

        # The control at the top: the built labels and what the events say, at once.
        page.locator("#page-language").get_by_text("简体中文").click()
        page.get_by_role("tab", name="训练", exact=True).wait_for(timeout=10_000)
        assert start.inner_text().strip() == "开始训练"
        errors.get_by_text("请修正以下设置").wait_for(timeout=30_000)  # said by an event, on the server
        assert (
            page.locator("#field-train-learning_rate").get_by_text("学习率", exact=True).count() == 1
        )  # the form's schema
        page.reload()  # remembered in this browser
        page.get_by_role("tab", name="数据", exact=True).wait_for(timeout=60_000)
        assert page.locator("#page-language input[value='zh-CN']").is_checked()

        # Gradio's own Settings → Language switches ours too.
        page.get_by_text("设置", exact=True).last.click()
        page.get_by_label("Language").first.click()  # the picker keeps its English name
        page.get_by_role("option", name="English").click()
        page.keyboard.press("Escape")
        if page.get_by_role("dialog").count():
            page.mouse.click(5, 5)  # the backdrop closes the Settings
        page.get_by_role("tab", name="Train", exact=True).wait_for(timeout=10_000)
        assert page.locator("#page-language input[value='en']").is_checked()
        _tab(page, "Train")
        errors.get_by_text("Please fix these settings").wait_for(timeout=30_000)

        # A browser set to Chinese opens the page in Chinese.
        chinese = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000}).new_page()
        chinese.goto(app.url)
        chinese.get_by_role("tab", name="数据", exact=True).wait_for(timeout=60_000)
        assert chinese.locator("#data-upload").get_by_text("上传数据集").count() == 1
        context.close()
    finally:
        app.stop()


@pytest.mark.slow
def test_the_chinese_click_through_previews_trains_chats_and_exports_chinese_data(browser, tmp_path):
    app = App(tmp_path / "home").start()
    try:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.goto(app.url)

        # 数据: the Chinese sample, previewed and counted, its first example as the model sees it.
        page.locator("#data-sample input").click()
        page.get_by_role("option", name="示例 · alpaca_zh_demo.json").click()
        summary = page.locator("#data-summary")
        summary.get_by_text("对话").first.wait_for(timeout=60_000)
        summary.get_by_text(re.compile("1,000.*行")).wait_for(timeout=120_000)
        assert "instruction → 用户消息" in summary.inner_text()
        page.locator("#data-stats").get_by_text("个词元").first.wait_for(timeout=120_000)
        page.locator("#data-example").get_by_text("识别并解释").first.wait_for(timeout=30_000)
        page.locator("#data-histogram canvas, #data-histogram svg").first.wait_for(timeout=30_000)  # the chart drawn
        page.wait_for_timeout(1000)
        shot(page, "zh-1-data")

        # 训练: a short run (3 steps, cutoff 64, one thread), the estimate's verdict in Chinese.
        _tab(page, "训练")
        set_number(page, "field-train-max_steps", "3")
        set_number(page, "field-data-cutoff_len", "64")
        page.get_by_text("高级设置").click()
        set_number(page, "field-train-threads", "1")
        page.locator("#train-estimate").get_by_text(re.compile(r"(可以运行|勉强可以) · 峰值内存")).wait_for(
            timeout=60_000
        )
        page.locator("#train-method-params").get_by_text("可训练参数").wait_for(timeout=60_000)
        shot(page, "zh-2-train")
        page.locator("#train-start").click()

        # 运行: the page goes there; the run finishes.
        progress = page.locator("#runs-progress")
        progress.get_by_text(re.compile("启动中|训练中|已完成")).first.wait_for(timeout=60_000)
        progress.get_by_text("已完成").wait_for(timeout=300_000)
        assert "3/3 步" in progress.inner_text()
        page.locator("#runs-table").get_by_text("状态").wait_for(timeout=10_000)
        shot(page, "zh-3-runs")

        # 对话: the tuned model answers a Chinese question.
        _tab(page, "对话")
        page.get_by_role("button", name="↻ 刷新运行").first.click()
        page.locator("#chat-adapter input").click()
        page.get_by_role("option", name=re.compile("lora")).click()
        page.get_by_text("采样").click()
        set_number(page, "chat-max-new", "24")
        page.locator("#chat-input textarea").fill("请用一句话介绍一下细胞理论。")
        page.locator("#chat-send").click()
        deadline = time.time() + 240
        while "完成，用时" not in page.locator("#chat-status").inner_text():
            assert time.time() < deadline, "no reply within 4 minutes"
            page.wait_for_timeout(100)
        assert page.locator('#chat-tuned [data-testid="bot"]').first.inner_text().strip()
        shot(page, "zh-4-chat")

        # 导出: the adapter zip downloads.
        _tab(page, "导出")
        page.get_by_role("button", name="↻ 刷新运行").last.click()
        page.locator("#export-run input").click()
        page.get_by_role("option", name=re.compile("lora")).click()
        page.locator("#export-message").get_by_text("也可以合并").wait_for(timeout=30_000)
        page.get_by_role("button", name="准备适配器压缩包").click()
        page.locator("#export-download").wait_for(timeout=60_000)
        page.locator("#export-message").get_by_text("已就绪").wait_for(timeout=10_000)
        shot(page, "zh-5-export")
        with page.expect_download() as info:
            page.locator("#export-download").click()
        archive = tmp_path / "adapter.zip"
        info.value.save_as(archive)
        assert "adapter/adapter_model.safetensors" in zipfile.ZipFile(archive).namelist()
        context.close()
    finally:
        app.stop()
