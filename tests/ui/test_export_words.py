"""What the Export tab and the server panel say, in both languages, without a model: the GGUF check in words, the
GGUF types offered, and the panel's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.test_i18n import english_words
from workbench.export.gguf import GgufExport
from workbench.ui import export_tab, i18n, serve_panel, serve_process

MODEL = {
    "file": "r-f16.gguf", "kind": "model", "type": "f16", "bytes": 270_900_000,
    "check": {"prompts": 4, "identical_replies": 3, "reference_tokens_ranked_first": 0.979,
              "chat_template_in_file": True},
}  # fmt: skip
LORA = {
    "file": "r-lora-f16.gguf", "kind": "lora", "type": "f16", "bytes": 2_400_000,
    "check": {"identical": 60, "identical_but_row_order": 4, "adapter_tensors": 64, "unmatched": [],
              "alpha_matches": True},
}  # fmt: skip


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_gguf_check_is_said_in_words(language):
    t = i18n.translator(language)
    model = export_tab.check_in_words(GgufExport(Path("/x/r-f16.gguf"), MODEL), t)
    lora = export_tab.check_in_words(GgufExport(Path("/x/r-lora-f16.gguf"), LORA), t)
    if language == "en":
        assert "3 of 4 greedy replies are identical" in model and "97.9%" in model
        assert "an unquantised file should reply exactly" in model  # f16 with a differing reply is flagged
        assert "64 of 64 adapter tensors" in lora and "r-lora-f16.json" in lora
    else:
        assert not english_words(model) and not english_words(lora), (model, lora)
        assert "97.9%" in model and "r-f16.json" in model


def test_k_quants_are_offered_only_with_llama_quantize(monkeypatch):
    monkeypatch.setattr(export_tab, "quantizer", lambda: None)
    assert export_tab.gguf_types() == ["f16", "q8_0", "f32", "bf16"]
    monkeypatch.setattr(export_tab, "quantizer", lambda: "/usr/bin/llama-quantize")
    assert "q4_k_m" in export_tab.gguf_types()


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_server_panel_refuses_in_words(language):
    t = i18n.translator(language)
    (said,) = list(serve_panel.start([], 8000, language))
    assert said == f"**{t.message('choose one or more finished runs to serve')}**"
    assert serve_panel.stop(language) == t("No server is running.")
    assert serve_process.current() is None and serve_panel.status(language) == ""
    if language != "en":
        assert not english_words(said)
