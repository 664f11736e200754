"""Logging in (user and PIN), and again after the agent restarted (PIN only, over
the screen the user was on, which stays as it was)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button

from terminal_agent import i18n
from terminal_agent.tui.api import ApiError
from terminal_agent.tui.base import Base
from terminal_agent.tui.widgets import BidiInput, Words, look_of, say_error


class LoginScreen(Base):
    TITLE_KEY = "title.login"
    KEYS = [("enter", "do.next_field"), ("ctrl_c", "do.quit")]

    def __init__(self, username: str = "") -> None:
        super().__init__()
        self.username = username

    def title_text(self) -> str:
        return self.look.t("title.manager")

    def body(self) -> ComposeResult:
        look = self.look
        with Vertical(id="login"):
            yield Words(look.t("title.login"), id="login-title")
            yield Words(look.t("user"), classes="label")
            yield BidiInput(self.username, id="username", max_length=64)
            yield Words(look.t("pin"), classes="label")
            yield BidiInput(id="pin", password=True, max_length=12)
            yield from self.buttons(("login-button", "login", "primary"))
            yield Words("", id="login-error")

    def on_mount(self) -> None:
        self.query_one("#pin" if self.username else "#username", BidiInput).focus()

    @on(BidiInput.Submitted, "#username")
    def to_pin(self) -> None:
        self.query_one("#pin", BidiInput).focus()

    @on(Button.Pressed, "#login-button")
    @on(BidiInput.Submitted, "#pin")
    def login(self) -> None:
        username = self.query_one("#username", BidiInput).value.strip()
        pin = i18n.latin_digits(self.query_one("#pin", BidiInput).value)  # a Persian keyboard types ۱۲۳
        self.query_one("#login-error", Words).update(self.look.t("working"))
        self.call("login", self.api.login, username, pin)

    def got_login(self, role: str) -> None:
        self.app.logged_in()  # type: ignore[attr-defined]

    def failed_login(self, error: ApiError) -> None:
        self.query_one("#pin", BidiInput).value = ""
        self.query_one("#login-error", Words).update(say_error(self.look, error))


class ReloginScreen(ModalScreen[bool]):
    """The agent forgot the session (it restarted): the same user gives the PIN again;
    the screen below keeps what it showed."""

    BINDINGS = [Binding("escape", "give_up", show=False)]

    def compose(self) -> ComposeResult:
        look = look_of(self)
        with Vertical(id="form"):
            yield Words(look.t("relogin"), id="form-title")
            yield Words(look.t("pin"), classes="label")
            yield BidiInput(id="pin", password=True, max_length=12)
            yield Words("", id="form-error")

    def on_mount(self) -> None:
        self.query_one("#pin", BidiInput).focus()

    @on(BidiInput.Submitted, "#pin")
    def again(self) -> None:
        self.relog(i18n.latin_digits(self.query_one("#pin", BidiInput).value))

    def relog(self, pin: str) -> None:
        api = self.app.api  # type: ignore[attr-defined]
        self.run_worker(lambda: self._try(api, pin), thread=True, group="relogin")

    def _try(self, api: object, pin: str) -> None:
        try:
            api.login(api.username, pin)  # type: ignore[attr-defined]
        except ApiError as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self.dismiss, True)

    def _failed(self, exc: ApiError) -> None:
        self.query_one("#pin", BidiInput).value = ""
        self.query_one("#form-error", Words).update(say_error(look_of(self), exc))

    def action_give_up(self) -> None:
        self.dismiss(False)
