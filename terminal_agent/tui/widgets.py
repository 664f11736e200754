"""The console's widgets that know Persian: text that wraps before it is put right to
left, input fields that draw Persian joined and in display order with the cursor on
the character it is at, tables and menus that read from the right, and the key bar.

`Look` is what decides: the locale, Persian digits or not, and who does the bidi
(the console, or a terminal that does its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Offset
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable, Input, OptionList
from textual.widgets.option_list import Option

from terminal_agent import i18n
from terminal_agent.tui.texts import error_text, t


@dataclass(frozen=True)
class Look:
    locale: str = "fa"
    persian_digits: bool = True
    bidi: str = "reorder"  # or "terminal": the terminal does its own bidi

    @property
    def rtl(self) -> bool:
        """Persian: the layout reads from the right."""
        return self.locale == "fa"

    @property
    def reorder(self) -> bool:
        """The console puts Persian in display order itself (also Persian names and
        words within the English console, in a left-to-right line)."""
        return self.bidi == "reorder"

    def t(self, key: str, **values: Any) -> str:
        """The catalogue's words, the template's digits in the user's digits; values go
        in as the caller formatted them (num, rial, ident)."""
        template = self.digits(t(key, self.locale))
        return template.format(**values) if values else template

    def error(self, code: str, detail: str = "") -> str:
        return self.digits(error_text(code, detail, self.locale))

    def digits(self, text: str) -> str:
        return i18n.digits(text, self.locale, self.persian_digits) if self.rtl else text

    def name(self, text: str) -> str:
        """A name or free text set among words and numbers: closed with a mark of the
        line's direction, so a Persian name in an English line does not pull the
        number after it to its side (bidi rule W2), nor a Latin one in Persian."""
        return f"{text}{chr(0x200F) if self.rtl else chr(0x200E)}"

    def ident(self, text: str) -> str:
        """A card number in the user's digits; a reference with letters (R-1001, a
        member id) as it was given."""
        if len(text) == 36 and text.count("-") == 4:  # a member's id: its start tells it apart
            return text[:8] + "…"
        return self.digits(text) if text.replace("…", "").replace("*", "").isdigit() else text

    def num(self, value: int) -> str:
        return i18n.number(value, self.locale, self.persian_digits)

    def signed(self, value: int) -> str:
        return ("+" if value > 0 else "") + self.num(value) if value >= 0 else "-" + self.num(-value)

    def rial(self, amount: int) -> str:
        return i18n.rial(amount, self.locale, self.persian_digits)

    def when(self, iso: str | datetime) -> str:
        at = datetime.fromisoformat(iso) if isinstance(iso, str) else iso
        return i18n.local_date(at, self.locale, self.persian_digits)

    def day(self, value: str | date) -> str:
        return i18n.day(date.fromisoformat(value) if isinstance(value, str) else value, self.locale,
                        self.persian_digits)

    def line(self, text: str) -> str:
        """One line as the terminal should get it."""
        return i18n.visual(text, rtl=self.rtl) if self.reorder else text

    def cell(self, text: str) -> Text:
        """A table cell or menu item: in display order, flush with the reading side."""
        return Text(self.line(text), justify="right" if self.rtl else "left", no_wrap=True, overflow="ellipsis")


def look_of(widget: Widget) -> Look:
    return getattr(widget.app, "look", Look("en"))


class Words(Widget):
    """Text that wraps to its width first, then (Persian) is put in display order line
    by line and set flush right. `text` is what it says, in reading order."""

    DEFAULT_CSS = "Words { height: auto; }"

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = text

    @property
    def text(self) -> str:
        return self._text

    def update(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.refresh(layout=True)

    def _lines(self, width: int) -> list[str]:
        look = look_of(self)
        if not self._text:
            return [""]
        return [look.line(x) for x in i18n.wrap(self._text, width)]

    def get_content_width(self, container: Any, viewport: Any) -> int:
        return max(cell_len(x) for x in self._text.split("\n")) if self._text else 0

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Text:
        look = look_of(self)
        lines = self._lines(self.content_size.width)
        return Text("\n".join(lines), justify="right" if look.rtl else "left", no_wrap=True, overflow="crop",
                    end="")


class BidiInput(Input):
    """An input field that edits Persian naturally in a terminal without bidi: the
    letters joined and right to left as typed, the cursor on the character it is at,
    and the arrow keys moving the way they point. Digits and Latin stay left to right.
    With the terminal doing bidi, or in English, it is Textual's Input."""

    DEFAULT_CSS = "BidiInput { width: 1fr; }"

    def __init__(self, value: str = "", **kw: Any) -> None:
        kw.setdefault("compact", True)
        super().__init__(value, **kw)

    def on_mount(self) -> None:
        self.cursor_blink = getattr(self.app, "blink", True)

    @property
    def _ours(self) -> bool:
        """Drawn here: in the Persian layout (flush right), and wherever Persian letters
        are typed and the console does the bidi."""
        look = look_of(self)
        return look.rtl or (look.reorder and not self.password and i18n.has_rtl(self.value))

    def _visual(self) -> tuple[str, list[int], bool]:
        if self.password:  # dots: no direction of their own, flush right in Persian
            return "•" * len(self.value), list(range(len(self.value))), False
        look = look_of(self)
        rtl_text = i18n.has_rtl(self.value)
        if not look.reorder or not rtl_text:
            return self.value, list(range(len(self.value))), rtl_text
        text, where = i18n.visual_map(self.value, rtl=True)
        return text.translate({0x200C: " ", 0x200D: " "}), where, True

    def _layout(self) -> tuple[str, int, int]:
        """The line as shown (with a cell for the cursor at the end), the cursor's cell,
        and where the line starts within the field."""
        text, where, rtl_text = self._visual()
        width = max(self.scrollable_content_region.width, 1)
        pos = self.cursor_position
        if rtl_text:
            line = " " + text
            cell = 0 if pos >= len(where) else where[pos] + 1
        else:
            line = text + " "
            cell = where[pos] if pos < len(where) else len(text)
        if len(line) <= width:  # flush with the reading side of the layout
            return line, cell, width - len(line) if look_of(self).rtl else 0
        start = min(max(cell - width // 2, 0), len(line) - width)
        return line[start:start + width], cell - start, 0

    def render_line(self, y: int) -> Strip:
        if y != 0 or not self._ours:
            return super().render_line(y)
        width = max(self.scrollable_content_region.width, 1)
        look = look_of(self)
        if not self.value:
            shown = Text(look.line(self.placeholder), justify="right", end="")
            shown.stylize(self.get_component_rich_style("input--placeholder"))
            if self.has_focus and self._cursor_visible:
                shown = Text(" ", end="") + shown
                shown.stylize(self.get_component_rich_style("input--cursor"), 0, 1)
            pad = max(width - shown.cell_len, 0)
            shown = Text(" " * pad, end="") + shown
        else:
            line, cell, pad = self._layout()
            shown = Text(" " * pad + line + " " * max(width - pad - len(line), 0), end="")
            if self.has_focus and self._cursor_visible:
                shown.stylize(self.get_component_rich_style("input--cursor"), pad + cell, pad + cell + 1)
        strip = Strip(self.app.console.render(shown, self.app.console_options.update_width(width)))
        return strip.crop(0, width).extend_cell_length(width).apply_style(self.rich_style)

    @property
    def cursor_screen_offset(self) -> Offset:
        if not self._ours or not self.value:
            return super().cursor_screen_offset
        x, y, _, _ = self.content_region
        _, cell, pad = self._layout()
        return Offset(x + pad + cell, y)

    def _rtl_value(self) -> bool:
        return self._ours and look_of(self).reorder and not self.password and i18n.has_rtl(self.value)

    def action_cursor_left(self, select: bool = False) -> None:
        if self._rtl_value():
            super().action_cursor_right(select)
        else:
            super().action_cursor_left(select)

    def action_cursor_right(self, select: bool = False) -> None:
        if self._rtl_value():
            super().action_cursor_left(select)
        else:
            super().action_cursor_right(select)


class Table(DataTable[Text]):
    """A table whose columns read from the right in Persian, every cell in display
    order. Rows are given in reading order; `row_data` keeps what each row stands for."""

    DEFAULT_CSS = "Table { height: 1fr; }"

    def __init__(self, columns: list[str], **kw: Any) -> None:
        kw.setdefault("cursor_type", "row")
        kw.setdefault("zebra_stripes", True)
        super().__init__(**kw)
        self._columns = columns
        self.row_data: list[Any] = []

    def on_mount(self) -> None:
        look = look_of(self)
        labels = [look.cell(look.t(c)) for c in self._columns]
        self.add_columns(*(reversed(labels) if look.rtl else labels))

    def fill(self, rows: list[tuple[list[str], Any]]) -> None:
        look = look_of(self)
        at = self.cursor_row
        self.clear()
        self.row_data = []
        for cells, data in rows:
            shown = [look.cell(c) for c in cells]
            self.add_row(*(reversed(shown) if look.rtl else shown))
            self.row_data.append(data)
        if rows:  # filled again (after an action): the cursor stays on the row it was on
            self.move_cursor(row=min(max(at, 0), len(rows) - 1))

    @property
    def chosen(self) -> Any:
        if not self.row_count or not 0 <= self.cursor_row < len(self.row_data):
            return None
        return self.row_data[self.cursor_row]


class Menu(OptionList):
    """A screen's tasks: each an option (its key shown beside it) that posts
    OptionSelected with the option's id, the action's name."""

    DEFAULT_CSS = "Menu { width: 26; height: 1fr; }"

    def __init__(self, items: list[tuple[str, str, str]], **kw: Any) -> None:
        """items: (action, catalogue key, key cap or "")."""
        super().__init__(**kw)
        self._items = items

    def on_mount(self) -> None:
        self.set_items(self._items)

    def set_items(self, items: list[tuple[str, str, str]]) -> None:
        look = look_of(self)
        self._items = items
        self.clear_options()
        for action, key, cap in items:
            label = f"{cap} {look.t(key)}" if cap else look.t(key)
            self.add_option(Option(look.cell(label), id=action))


class KeyBar(Words):
    """The keys of the screen, in the user's language, wrapped to fit."""

    DEFAULT_CSS = "KeyBar { height: auto; background: $panel; color: $text-muted; padding: 0 1; }"

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__("")
        self._keys = keys

    def on_mount(self) -> None:
        look = look_of(self)
        caps = {"esc": "key.esc", "ctrl_c": "key.ctrl_c", "enter": "key.enter", "tab": "key.tab"}
        parts = [f"{look.t(caps[cap]) if cap in caps else cap.upper()} {look.t(key)}" for cap, key in self._keys]
        # each key with its word is one unit: the bar wraps between keys, never inside one
        self.update("   ".join(p.replace(" ", "\u00a0") for p in parts))


def say_error(look: Look, exc: Any) -> str:
    return look.error(getattr(exc, "code", "other"), getattr(exc, "detail", str(exc)))
