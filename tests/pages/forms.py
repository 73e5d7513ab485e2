"""Reading the pages' forms as a browser would, for the tests that drive them over ASGI."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx


@dataclass
class Form:
    action: str
    id: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden and text inputs
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, label

    def button(self, label: str) -> dict[str, str]:
        for name, value, text in self.buttons:
            if text.strip() == label:
                return {name: value} if name else {}
        raise AssertionError(f"no button {label!r} in {self.buttons}")


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: tuple[str, str] | None = None
        self._label: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("id", "")))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms:
            self._button = (values.get("name", ""), values.get("value", ""))
            self._label = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._label.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            self.forms[-1].buttons.append((*self._button, "".join(self._label)))
            self._button = None


def forms(response: httpx.Response) -> dict[str, Form]:
    parser = _Parser()
    parser.feed(response.text)
    return {form.id or form.action: form for form in parser.forms}


def step_form(response: httpx.Response) -> Form:
    return forms(response)["step-form"]
