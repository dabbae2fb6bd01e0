"""The page in English and Simplified Chinese: which text is translated where, and how.

- **What the page is built with** (labels, help texts, placeholders, button values, tab and accordion titles, the
  choices of pickers, markdown): Gradio's I18n. The component gets a key (`_("Upload a dataset")`, an I18nData),
  `launch(i18n=gradio_i18n())` ships each key's text in every language, and the browser shows the one of the
  page's language: the browser's own, or the one picked on the page (the language control, or Gradio's footer
  Settings → Language). Keys are hashes, not the English text: Gradio's frontend ends a key at its first `}`.
- **What events return** (the data summary, estimates and verdicts, run progress, tables, messages, errors):
  translated here, on the server, into the page's language, which every event reads from the language control
  (`static/language.js` keeps it in step with the page's locale). Gradio's frontend cannot do this part: a key
  takes no values (no "{rows} rows"), it translates only the first key in a string, not Dataframe headers, and
  gr.Warning refuses an I18nData. When the language changes, the events that show state run again.
- **Messages of the engine** (errors of the data layer, config checks, pre-flight problems, estimate advice, a
  run's error as the worker recorded it) are written in English where they arise: the CLI, logs and the job store
  keep them so. The page translates them by templates (`locales/<language>/messages.yaml`): an English template
  with `{slots}` is matched against the message, its slots (file, row, field, values) go into the translated
  template, and what a slot holds is translated in turn (it may be a message of its own) unless the slot says it is a
  name, a number or a quoted name (`{file:name}`, `{row:number}`, `{column:quoted}`: a file called "Data" stays
  so). A message no template matches is shown in English (the tests walk the engine's messages to keep that from
  happening).

Catalogues: `locales/<language>/*.yaml` map English text (a template where it has values: `"{rows:,} rows"`) to
its translation; English is the text in the code, so the English page needs no catalogue. A text without a
translation shows in English and is remembered (`missing()`), which the tests check.
"""

from __future__ import annotations

import hashlib
import re
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from gradio.i18n import I18n, I18nData

LOCALES = Path(__file__).resolve().parent / "locales"
ENGLISH = "en"
MESSAGES = "messages.yaml"  # the engine's message templates, matched against what the engine says
# Longer messages are not matched against templates (a pasted traceback, a whole log).
_LONGEST_MESSAGE = 4000
# What a template's slot matches: any text (a message, translated in turn; or a name, kept), a number, a quoted name.
_SLOTS = {
    "": ".+?",
    "name": ".+?",
    "number": r"-?(?:[0-9][0-9.,_]*(?:[eE][+-]?[0-9]+)?|inf|nan)",
    "quoted": r"'[^']*'|\"[^\"]*\"",
}
# Text that reads as English prose (three words in a row): a slot holding it should have been translated.
_PROSE = re.compile(r"(?<![\w'`./-])[A-Za-z]{2,}(?: [A-Za-z]{2,}){2}(?![\w'`./-])")

_missing: set[tuple[str, str]] = set()
_static: dict[str, dict[str, str]] = {}
_lock = threading.Lock()


@cache
def languages() -> dict[str, str]:
    """The page's languages, code → its own name ("zh-CN": "简体中文"), English first."""
    return yaml.safe_load((LOCALES / "languages.yaml").read_text(encoding="utf-8"))


@cache
def catalogue(language: str) -> dict[str, str]:
    """English text → its translation into `language`, from every file of its folder (empty for English)."""
    entries: dict[str, str] = {}
    if language == ENGLISH:
        return entries
    for path in sorted((LOCALES / language).glob("*.yaml")):
        for english, translated in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            if not isinstance(english, str) or not isinstance(translated, str):
                raise ValueError(f"{path.name}: {english!r} → {translated!r}: both must be text")
            if entries.get(english, translated) != translated:
                raise ValueError(f"{path.name}: {english!r} is translated twice, differently")
            entries[english] = translated
    return entries


@dataclass(frozen=True)
class _Template:
    pattern: re.Pattern[str]
    translated: str
    messages: frozenset[str]  # the slots that hold a message of their own (translated in turn)


@cache
def _templates(language: str) -> list[_Template]:
    """The engine's message templates, the most specific (the most fixed text) first."""
    path = LOCALES / language / MESSAGES
    if language == ENGLISH or not path.exists():
        return []
    found = []
    for english, translated in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
        fixed, regex, seen, messages = 0, [], set(), set()
        for literal, slot, kind, _conversion in string.Formatter().parse(english):
            fixed += len(literal)
            regex.append(re.escape(literal))
            if slot is not None:
                regex.append(f"(?P={slot})" if slot in seen else f"(?P<{slot}>{_SLOTS[kind or '']})")
                seen.add(slot)
                if not kind:
                    messages.add(slot)
        pattern = re.compile("".join(regex), re.DOTALL)
        found.append((fixed, _Template(pattern, translated, frozenset(messages))))
    return [template for _, template in sorted(found, key=lambda item: -item[0])]


@dataclass(frozen=True)
class Translator:
    """Text in one language: `t("{rows:,} rows", rows=n)`, `t.message(...)` for what the engine says."""

    language: str

    def __call__(self, text: str, /, **values: Any) -> str:
        """`text` (an English template when `values` are given) in this language, with its values filled in."""
        template = text
        if self.language != ENGLISH:
            template = catalogue(self.language).get(text)
            if template is None:
                _missing.add((self.language, text))
                template = text
        return template.format(**values) if values else template

    def message(self, text: str, _depth: int = 0) -> str:
        """A message of the engine (English, with its values in it) in this language, line by line."""
        if self.language == ENGLISH or not text:
            return text
        if "\n" in text:
            return "\n".join(self.message(line, _depth) for line in text.split("\n"))
        exact = catalogue(self.language).get(text)
        if exact is not None:
            return exact
        if len(text) <= _LONGEST_MESSAGE and _depth < 4:
            for template in _templates(self.language):
                match = template.pattern.fullmatch(text)
                if match:
                    values = {
                        slot: self.message(value, _depth + 1) if slot in template.messages else value
                        for slot, value in match.groupdict().items()
                    }
                    return template.translated.format(**values)
        if (_depth == 0 and re.search(r"[A-Za-z]{2,}", text)) or _PROSE.search(text):
            _missing.add((self.language, text))
        return text

    def error(self, err: BaseException) -> str:
        """An error's message (a WorkbenchError's sentence, with its file, row and field) in this language."""
        return self.message(str(err))


EN = Translator(ENGLISH)  # what the engine and the CLI say, as they say it


@cache
def translator(language: str | None) -> Translator:
    """The translator for a page's language; English for None or a language the page does not have."""
    return Translator(language if language in languages() else ENGLISH)


def static(render: Callable[[Translator], str]) -> I18nData:
    """A key for text the page is built with, rendered in every language (`render(t)`), shown in the browser's."""
    texts = {code: render(translator(code)) for code in languages()}
    key = "wb-" + hashlib.blake2s("\0".join(texts.values()).encode(), digest_size=8).hexdigest()
    with _lock:
        _static[key] = texts
    return I18nData(key)


def _(text: str, /, **values: Any) -> I18nData:
    """A key for `text` (English; a template when `values` are given), shown in the page's language."""
    return static(lambda t: t(text, **values))


def gradio_i18n() -> I18n:
    """Every key the page was built with, in every language: for `launch(i18n=...)`."""
    with _lock:
        return I18n(**{code: {key: texts[code] for key, texts in _static.items()} for code in languages()})


_MARKER = re.compile(r'__i18n__\{"__type__": "translation_metadata", "key": "(wb-[0-9a-f]+)"\}')


def shown(value: Any, language: str) -> Any:
    """What the page shows for a value it was built with: a key (or a text holding one) in `language`."""
    if isinstance(value, I18nData):
        value = str(value)
    if isinstance(value, str) and "__i18n__" in value:
        return _MARKER.sub(lambda m: _static.get(m.group(1), {}).get(language, m.group(0)), value)
    return value


def missing() -> list[tuple[str, str]]:
    """(language, English text) of every text asked for that has no translation, since the process started."""
    return sorted(_missing)
