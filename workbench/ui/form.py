"""A Gradio form generated from the run config's pydantic models.

Each field becomes the component its type calls for: a `Literal` a dropdown, a bool a checkbox, a bounded number
a slider, an open number a number box; the field's description is the help text, and the label and help text show
in the page's language (each field's name and description in Chinese: `locales/zh-CN/schema.yaml`). Values come
back as a nested dict that validates into a RunConfig, so the form can never drift from the config.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import gradio as gr
from gradio.i18n import I18nData
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from workbench.ui.i18n import _, static


@dataclass
class FormField:
    """One generated component and where its value goes in the config (`section`, `name`)."""

    section: str
    name: str
    component: gr.components.Component
    # "literal", "bool", "int", "float", "optional_int", "optional_float", "modules" (a choice or a list of
    # names), "names" (a list of names), "multi" (several of fixed choices), "text" (optional), "string"
    kind: str
    choices: tuple = ()

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"


def build_fields(
    section: str,
    model: type[BaseModel],
    defaults: BaseModel,
    names: list[str] | None = None,
    skip: tuple = (),
    id_prefix: str | None = None,
) -> list[FormField]:
    """Components for the fields of `model` (all, or `names` in that order), rendered where this is called.

    Each gets the element id `field-<id_prefix or section>-<name>` (methods share field names: they pass their
    own prefix)."""
    chosen = names if names is not None else [n for n in model.model_fields if n not in skip]
    prefix = id_prefix or section
    return [_component(section, n, model.model_fields[n], getattr(defaults, n), prefix) for n in chosen]


def _component(section: str, name: str, info: FieldInfo, value: Any, prefix: str) -> FormField:
    label = _(label_text(name))
    description = info.description or ""
    help_text = _(description)
    annotation = info.annotation
    elem_id = f"field-{prefix}-{name}"
    choices = _literal_choices(annotation)
    if choices is not None and _allows_list(annotation):
        text = value if isinstance(value, str) else ",".join(value)
        help_text = _help(description, "{help} Several names: separate them with commas.")
        box = gr.Dropdown(choices, value=text, label=label, info=help_text, allow_custom_value=True, elem_id=elem_id)
        return FormField(section, name, box, "modules", tuple(choices))
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if get_origin(item) is Literal:
            options = list(get_args(item))
            box = gr.Dropdown(options, value=value, multiselect=True, label=label, info=help_text, elem_id=elem_id)
            return FormField(section, name, box, "multi", tuple(options))
        box = gr.Textbox(
            value=", ".join(value), label=label, info=_help(description, "{help} (comma-separated)"), elem_id=elem_id
        )
        return FormField(section, name, box, "names")
    if choices is not None:
        return FormField(
            section, name, gr.Dropdown(choices, value=value, label=label, info=help_text, elem_id=elem_id), "literal"
        )
    base, optional = _unwrap_optional(annotation)
    if base is bool:
        return FormField(section, name, gr.Checkbox(value=value, label=label, info=help_text, elem_id=elem_id), "bool")
    if base in (int, float):
        low, high = _bounds(info)
        kind = ("optional_" if optional else "") + base.__name__
        if optional and low is not None and low >= 1:
            help_text = _help(description, "{help} (0: not set)")
            value = 0 if value is None else value
            low = 0
        # Shares (dropout, warm-up, validation split) read best as sliders; counts and rates need exact typing.
        if base is float and not optional and _inclusive_low(info) == 0 and high == 1:
            component = gr.Slider(0, 1, value=value, step=0.01, label=label, info=help_text, elem_id=elem_id)
        else:
            component = gr.Number(
                value=value,
                label=label,
                info=help_text,
                minimum=low,
                maximum=high,
                precision=0 if base is int else None,
                elem_id=elem_id,
            )
        return FormField(section, name, component, kind)
    kind = "text" if optional else "string"
    if (info.json_schema_extra or {}).get("pick") == "run":
        # A run id: picked from the runs there are (the tab fills the choices in), or typed.
        box = gr.Dropdown([(_("none"), "")], value=value or "", label=label, info=help_text, allow_custom_value=True,
                          elem_id=elem_id)  # fmt: skip
        return FormField(section, name, box, kind)
    return FormField(section, name, gr.Textbox(value=value or "", label=label, info=help_text, elem_id=elem_id), kind)


def label_text(name: str) -> str:
    """A field's label in English (its name, spaced): the key of its translation."""
    return name.replace("_", " ")


def _help(description: str, template: str) -> I18nData:
    """The description with a note (`template`, "{help} ..."), each in the page's language."""
    return static(lambda t: t(template, help=t(description)))


def component_value(field: FormField, value: Any) -> Any:
    """A config value as `field`'s component shows it."""
    if field.kind in ("modules", "names") and isinstance(value, list):
        return ",".join(value) if field.kind == "modules" else ", ".join(value)
    if field.kind.startswith("optional_") and value is None:
        return 0
    return value


def collect(fields: list[FormField], values: list[Any]) -> dict[str, dict[str, Any]]:
    """Turn component values back into config sections ({"train": {...}, ...}); empty optional numbers are None."""
    sections: dict[str, dict[str, Any]] = {}
    for field, value in zip(fields, values, strict=True):
        sections.setdefault(field.section, {})[field.name] = _parse(field.kind, value, field.choices)
    return sections


def _parse(kind: str, value: Any, choices: tuple = ()) -> Any:
    # An optional count that must be at least 1 shows "not set" as 0 (a number box cannot be empty).
    if kind.startswith("optional_") and value in (None, "", 0):
        return None
    if kind.endswith("int") and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "modules" and isinstance(value, str) and value not in choices:
        return [part.strip() for part in value.split(",") if part.strip()]
    if kind == "names" and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if kind == "multi":
        return list(value or [])
    if kind == "text":
        return value or None
    if kind == "string":
        return value or ""
    return value


def _literal_choices(annotation: Any) -> list[str] | None:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    for arg in _union_args(annotation):
        if get_origin(arg) is Literal:
            return list(get_args(arg))
    return None


def _allows_list(annotation: Any) -> bool:
    return any(get_origin(arg) is list for arg in _union_args(annotation))


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = _union_args(annotation)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return ()


def _inclusive_low(info: FieldInfo) -> float | None:
    return next((meta.ge for meta in info.metadata if getattr(meta, "ge", None) is not None), None)


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    """The field's (low, high) limits; exclusive limits count as the limit itself, the config checks the rest."""
    low = high = None
    for meta in info.metadata:
        for name in ("ge", "gt"):
            low = getattr(meta, name, None) if getattr(meta, name, None) is not None else low
        for name in ("le", "lt"):
            high = getattr(meta, name, None) if getattr(meta, name, None) is not None else high
    return low, high
