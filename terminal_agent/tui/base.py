"""What every screen of the console shares: the messages, the way it asks the agent
(a thread worker per call; the answer comes back as a message), the title bar, the
message line and the key bar, and the forms and questions it opens.

    Answered(tag, value)   an API call made with Screen.call(tag, ...) succeeded
    Failed(tag, error)     ... or was refused (ApiError); the screen says why
    CardSwiped(number)     a reader at the till read a member card
    ReaderChanged(state)   a reader's state changed
    AgentState(online)     the agent answers again, or stopped answering
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button

from terminal_agent import i18n
from terminal_agent.tui.api import AgentApi, ApiError
from terminal_agent.tui.widgets import BidiInput, KeyBar, Look, Words, look_of, say_error


class Answered(Message, bubble=False):
    def __init__(self, tag: str, value: Any) -> None:
        super().__init__()
        self.tag = tag
        self.value = value


class Failed(Message, bubble=False):
    def __init__(self, tag: str, error: ApiError) -> None:
        super().__init__()
        self.tag = tag
        self.error = error


class CardSwiped(Message, bubble=False):
    def __init__(self, number: str) -> None:
        super().__init__()
        self.number = number


class CardRefused(Message, bubble=False):
    def __init__(self, masked: str, reason: str) -> None:
        super().__init__()
        self.masked = masked
        self.reason = reason


class ReaderChanged(Message, bubble=False):
    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        self.state = state


class AgentState(Message, bubble=False):
    def __init__(self, online: bool) -> None:
        super().__init__()
        self.online = online


SESSION_CODES = ("bad_session", "session_required")
# refusals that say nothing about what was asked: the screen keeps what it shows
PASSING_CODES = ("unreachable", *SESSION_CODES)


class TitleBar(Words):
    DEFAULT_CSS = "TitleBar { dock: top; background: $primary; color: $text; text-style: bold; padding: 0 1; }"


class Base(Screen[None]):
    """A screen of the console: title bar, body, message line, key bar."""

    TITLE_KEY = "title.manager"
    KEYS: list[tuple[str, str]] = [("esc", "do.back"), ("ctrl_c", "do.quit")]

    @property
    def look(self) -> Look:
        return look_of(self)

    @property
    def api(self) -> AgentApi:
        return self.app.api  # type: ignore[attr-defined, no-any-return]

    def compose(self) -> ComposeResult:
        yield TitleBar(self.title_text(), id="titlebar")
        yield from self.body()
        with Vertical(id="bottom"):
            yield Words("", id="message")
            yield KeyBar(self.KEYS)

    def body(self) -> ComposeResult:
        yield from ()

    def title_text(self) -> str:
        look = self.look
        who = ""
        if self.api.username and self.api.role:
            who = " · " + look.t("signed_in", user=self.api.username, role=look.t(f"role.{self.api.role}"))
        online = getattr(self.app, "online", True)
        return f"{look.t(self.TITLE_KEY)}{who} · {look.t('agent.online' if online else 'agent.offline')}"

    def on_agent_state(self, message: AgentState) -> None:
        self.query_one("#titlebar", TitleBar).update(self.title_text())

    def say(self, text: str, error: bool = False) -> None:
        line = self.query_one("#message", Words)
        line.set_class(error, "error")
        line.update(text)

    def call(self, tag: str, fn: Callable[..., Any], *args: Any) -> None:
        """Ask the agent off the event loop; the answer comes back as Answered or Failed."""
        self._call(tag, fn, args)

    @work(thread=True, group="api")
    def _call(self, tag: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            value = fn(*args)
        except ApiError as exc:
            self.post_message(Failed(tag, exc))
            return
        self.post_message(Answered(tag, value))

    def on_answered(self, message: Answered) -> None:
        handler = getattr(self, f"got_{message.tag}", None)
        if handler is not None:
            handler(message.value)

    def on_failed(self, message: Failed) -> None:
        error = message.error
        if error.code in SESSION_CODES and self.api.username:
            self.app.relogin()  # type: ignore[attr-defined]
        if error.code == "unreachable":
            self.app.post_message(AgentState(False))
        handler = getattr(self, f"failed_{message.tag}", None)
        if handler is None or handler(error) is False:
            self.say(say_error(self.look, error), error=True)

    def allowed(self, *roles: str) -> bool:
        """The console mirrors the API's roles: an action the user may not do is not tried."""
        if self.api.role in roles:
            return True
        self.say(self.look.t("not_allowed"), error=True)
        return False

    def buttons(self, *items: tuple[str, str, str]) -> ComposeResult:
        """A row of buttons (id, catalogue key, variant) that reads from the right in Persian."""
        look = self.look
        row = [Button(look.line(look.t(key)), id=name, variant=variant, compact=True)  # type: ignore[arg-type]
               for name, key, variant in items]
        with Horizontal(classes="buttons"):
            yield from (reversed(row) if self.look.rtl else row)


# -- forms ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One field of a form. kind: text, card, mobile, whole (a signed number), amount
    (above zero), date (in the calendar of the user's language), pin, role."""

    name: str
    label: str  # a catalogue key
    kind: str = "text"
    required: bool = True
    value: str = ""
    label_values: dict[str, str] = field(default_factory=dict)
    past: bool = False  # a date: not in the future


def field_problem(look: Look, f: Field, raw: str) -> tuple[str | None, Any]:
    """(what is wrong, in the user's language) or (None, the value to send)."""
    label = look.t(f.label, **f.label_values)
    text = raw.strip()
    if not text:
        return (look.t("required", field=label), None) if f.required else (None, None)
    if f.kind in ("whole", "amount"):
        value = i18n.parse_whole(text)
        if value is None or (f.kind == "amount" and value <= 0):
            return look.t("whole_number" if f.kind == "whole" else "positive_number", field=label,
                          example=look.num(500) if f.kind == "amount" else "-200"), None
        return None, value
    if f.kind == "date":
        day = i18n.parse_day(text, look.locale)
        if day is None:
            return look.t("bad_date", field=label, example=look.digits(i18n.DATE_EXAMPLE[look.locale])), None
        if f.past and day > date.today():
            return look.t("future_date", field=label), None
        return None, day.isoformat()
    if f.kind in ("card", "mobile", "pin"):
        return None, i18n.latin_digits(text).replace(" ", "").replace("-", "")
    if f.kind == "role":
        role = text.lower()
        fa_roles = {"صندوقدار": "cashier", "مدیر": "manager", "مدیر سامانه": "admin"}
        role = fa_roles.get(text, role)
        if role not in ("cashier", "manager", "admin"):
            return look.t("bad_role"), None
        return None, role
    return None, text


class FormScreen(ModalScreen[dict[str, Any] | None]):
    """Labelled fields, OK and Cancel; Enter goes from field to field and sends the
    form from the last. Returns the checked values, or None."""

    BINDINGS = [Binding("escape", "cancel", show=False)]

    def __init__(self, title: str, fields: list[Field], check: Callable[[dict[str, Any]], str | None] | None = None
                 ) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.check = check

    @property
    def look(self) -> Look:
        return look_of(self)

    def compose(self) -> ComposeResult:
        look = self.look
        with VerticalScroll(id="form"):
            yield Words(self.title_text, id="form-title")
            for f in self.fields:
                yield Words(look.t(f.label, **f.label_values), classes="label")
                yield BidiInput(f.value, id=f"f-{f.name}", password=f.kind == "pin", max_length=200)
            yield Words("", id="form-error")
            row = [Button(look.line(look.t("ok")), id="ok", variant="primary", compact=True),
                   Button(look.line(look.t("cancel")), id="cancel", compact=True)]
            with Horizontal(classes="buttons"):
                yield from (reversed(row) if look.rtl else row)

    def on_mount(self) -> None:
        self.query(BidiInput).first().focus()

    def submit(self) -> None:
        values: dict[str, Any] = {}
        for f in self.fields:
            problem, value = field_problem(self.look, f, self.query_one(f"#f-{f.name}", BidiInput).value)
            if problem:
                self.query_one("#form-error", Words).update(problem)
                self.query_one(f"#f-{f.name}", BidiInput).focus()
                return
            values[f.name] = value
        problem = self.check(values) if self.check else None
        if problem:
            self.query_one("#form-error", Words).update(problem)
            return
        self.dismiss(values)

    @on(Button.Pressed, "#ok")
    def ok(self) -> None:
        self.submit()

    @on(BidiInput.Submitted)
    def next_field(self, event: BidiInput.Submitted) -> None:
        inputs = list(self.query(BidiInput))
        at = inputs.index(event.input)
        if at + 1 < len(inputs):
            inputs[at + 1].focus()
        else:
            self.submit()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A question with Yes and No, in the user's language; Esc is No."""

    BINDINGS = [Binding("escape", "no", show=False)]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        look = look_of(self)
        with Vertical(id="confirm"):
            yield Words(self.question, id="question")
            row = [Button(look.line(look.t("yes")), id="yes", variant="primary", compact=True),
                   Button(look.line(look.t("no")), id="no", compact=True)]
            with Horizontal(classes="buttons"):
                yield from (reversed(row) if look.rtl else row)

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    @on(Button.Pressed, "#yes")
    def yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(False)
