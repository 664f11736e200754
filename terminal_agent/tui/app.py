"""The console (Textual): the store manager's tasks and, for shops without a POS, the
cashier's till. A client of the local API like the POS: the agent checks, writes and
audits every action under the logged-in user's session; the console asks and shows.

One factory, `build_console`, makes the app for `loyalty-agent tui` and for the tests.
The app logs in, shows the screen the user's role is for, listens to the till's card
readers, watches that the agent answers (and, when it restarted, asks for the PIN
again over the screen the user was on), and asks before it quits.
"""

from __future__ import annotations

import threading
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding

from terminal_agent.tui.api import AgentApi, ApiError
from terminal_agent.tui.base import AgentState, Base, CardRefused, CardSwiped, ConfirmScreen, ReaderChanged
from terminal_agent.tui.login import LoginScreen, ReloginScreen
from terminal_agent.tui.widgets import Look

EVENTS_RETRY_S = 3.0  # wait before listening again after the agent's event stream ended
HEALTH_EVERY_S = 5.0  # how often the console checks that the agent answers
MANAGERS = ("manager", "admin")

CSS = """
Base { background: $surface; }
#main { height: 1fr; }
#content { width: 1fr; height: 1fr; padding: 0 1; }
Menu { width: 26; height: 1fr; border: none; background: $panel; }
Menu:focus { border: none; }
#search, .row { height: auto; margin: 1 0 0 0; }
BidiInput { width: 1fr; background: $boost; }
.row BidiInput, #search BidiInput, .field BidiInput { margin: 0 1 0 0; }
.rtl .row BidiInput, .rtl #search BidiInput, .rtl .field BidiInput { margin: 0 0 0 1; }
Button { margin: 0 1; }
.buttons { height: auto; margin: 1 0 0 0; }
.rtl .buttons { align-horizontal: right; }
.label { color: $text-muted; }
#member, #customer { margin: 1 0; text-style: bold; }
#quote, #result, #detail, #sale { margin: 1 0 0 0; }
#bottom { dock: bottom; height: auto; }
#message { padding: 0 1; color: $success; }
#message.error, #form-error, #login-error { color: $error; }
#reader { color: $text-muted; height: auto; }
LoginScreen, FormScreen, ConfirmScreen, ReloginScreen { align: center middle; }
#login, #form, #confirm { width: 64; max-width: 100%; height: auto; max-height: 100%; border: round $accent;
                          padding: 0 1; background: $panel; }
#login-title, #form-title { text-style: bold; }
Table { height: 1fr; min-height: 4; }
.rtl Words, .rtl Menu { text-align: right; }
.table-box { height: 1fr; min-height: 4; }
.rtl Table { width: auto; max-width: 100%; }
.rtl .table-box { align-horizontal: right; }
.field { height: 1; margin: 0; }
.field-label { width: 24; color: $text-muted; }
#lines, #quote { color: $text; }
"""


class Console(App[None]):
    CSS = CSS
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+c", "ask_quit", show=False, priority=True),
                Binding("ctrl+q", "ask_quit", show=False, priority=True)]

    def __init__(self, api: AgentApi, look: Look, username: str = "", blink: bool = True) -> None:
        super().__init__()
        self.blink = blink  # False for pictures of the screens: nothing changes by the clock
        self.api = api
        self.look = look
        self.username = username
        self.online = True
        self.tiers: dict[str, dict[str, str]] = {}
        self.printer = False
        self._stop = threading.Event()
        self._listening = False

    def on_mount(self) -> None:
        self.title = self.look.line(self.look.t("title.manager"))
        if self.look.rtl:
            self.screen.add_class("rtl")
        self.push_screen(LoginScreen(self.username))
        self.set_interval(HEALTH_EVERY_S, self.check_agent)

    def push_screen(self, screen: Any, *args: Any, **kw: Any) -> Any:
        if self.look.rtl and hasattr(screen, "add_class"):
            screen.add_class("rtl")
        return super().push_screen(screen, *args, **kw)

    def switch_screen(self, screen: Any) -> Any:
        if self.look.rtl and hasattr(screen, "add_class"):
            screen.add_class("rtl")
        return super().switch_screen(screen)

    # -- who is logged in ---------------------------------------------------------

    def logged_in(self) -> None:
        """After a login: the loyalty table's tier names, then the role's screen."""
        self._after_login()

    @work(thread=True, exclusive=True, group="login")
    def _after_login(self) -> None:
        try:
            tiers = self.api.tiers()["tiers"]
        except ApiError:
            tiers = []
        try:
            printer = "printer" in self.api.status()
        except ApiError:
            printer = False
        self.call_from_thread(self._home, tiers, printer)

    def _home(self, tiers: list[dict[str, Any]], printer: bool) -> None:
        from terminal_agent.tui.members import MemberScreen
        from terminal_agent.tui.till import TillScreen

        self.tiers = {x["id"]: x for x in tiers}
        self.printer = printer
        self.switch_screen(MemberScreen() if self.api.role in MANAGERS else TillScreen())
        if not self._listening:
            self._listening = True
            self._stop = threading.Event()
            # its own daemon thread, not a thread worker: a worker runs in the loop's
            # executor, which asyncio waits for at exit, and this one waits on the agent
            threading.Thread(target=self.listen, args=(self._stop,), name="console-events", daemon=True).start()

    def logout(self) -> None:
        self._stop.set()
        self.api.stop_events()
        self._listening = False
        self.run_worker(self.api.logout, thread=True, group="logout")
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(LoginScreen(self.api.username or ""))

    def relogin(self) -> None:
        if any(isinstance(s, ReloginScreen) for s in self.screen_stack):
            return
        self.push_screen(ReloginScreen(), self._relogged)

    def _relogged(self, done: bool | None) -> None:
        if done:
            say = getattr(self.screen, "say", None)
            if say is not None:
                say(self.look.t("relogged"))
        else:
            self.logout()

    def tier_name(self, tier_id: str) -> str:
        from terminal_agent.tui.texts import has, t

        tier = self.tiers.get(tier_id)
        if tier:
            return str(tier["name_fa" if self.look.locale == "fa" else "name_en"])
        return t(f"tier.{tier_id}", self.look.locale) if has(f"tier.{tier_id}") else tier_id

    # -- quitting -------------------------------------------------------------------

    def action_ask_quit(self) -> None:
        if isinstance(self.screen, ConfirmScreen):
            return
        self.push_screen(ConfirmScreen(self.look.t("quit_ask")), lambda yes: self.exit() if yes else None)

    def on_unmount(self) -> None:
        self._stop.set()
        self.api.close()

    # -- the agent ------------------------------------------------------------------

    def check_agent(self) -> None:
        self._check_agent()

    @work(thread=True, exclusive=True, group="health")
    def _check_agent(self) -> None:
        try:
            self.api.health()
            online = True
        except ApiError:
            online = False
        if online != self.online:
            self.post_message(AgentState(online))

    def on_agent_state(self, message: AgentState) -> None:
        self.online = message.online
        for screen in self.screen_stack:
            screen.post_message(AgentState(message.online))

    def _deliver(self, message: Any) -> None:
        """To the topmost of the console's screens (a form open on it does not take it)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, Base):
                screen.post_message(message)
                return

    def listen(self, stop: threading.Event) -> None:
        """Card reads from the till's readers go to the screen the user is on; the
        stream is opened again while the agent is away."""
        while not stop.is_set():
            try:
                for event in self.api.events():
                    if stop.is_set():
                        return
                    kind = event.get("type")
                    if kind == "card" and event.get("number"):
                        self.call_from_thread(self._deliver, CardSwiped(str(event["number"])))
                    elif kind == "card_refused":
                        self.call_from_thread(self._deliver, CardRefused(str(event.get("masked", "")),
                                                                         str(event.get("code", ""))))
                    elif kind == "reader":
                        self.call_from_thread(self._deliver, ReaderChanged(event))
            except ApiError:
                pass
            except RuntimeError:  # the app is gone (call_from_thread after it stopped)
                return
            stop.wait(EVENTS_RETRY_S)


def build_console(api: AgentApi, locale: str, persian_digits: bool = True, bidi: str = "reorder",
                  username: str = "", blink: bool = True) -> Console:
    """The console as `loyalty-agent tui` runs it; the tests build theirs here too."""
    return Console(api, Look(locale, persian_digits, bidi), username, blink)
