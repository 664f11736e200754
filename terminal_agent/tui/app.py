"""The store manager's console (Textual): log in with user and PIN, find a member by
card (typed or swiped) or mobile, enrol members, issue, replace and block cards,
adjust points. A thin shell over the local API: the daemon checks, writes and
audits every action under the manager's session; the console only asks and shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static

from terminal_agent.tui.api import AgentApi, ApiError
from terminal_agent.tui.texts import t

EVENTS_RETRY_S = 3.0  # wait before listening again after the agent's event stream ended
FIELD_CHARS_MAX = 200  # the longest thing a form field takes (a name)


class FormScreen(ModalScreen[dict[str, str] | None]):
    """A small form: labelled fields, OK and Cancel. Returns the values, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[tuple[str, str]], locale: str, required: tuple[str, ...],
                 check: Callable[[dict[str, str]], str | None] | None = None,
                 values: dict[str, str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.locale = locale
        self.required = required
        self.check = check
        self.values = values or {}

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Label(self.title_text, id="form-title")
            for name, label in self.fields:
                yield Label(label)
                yield Input(value=self.values.get(name, ""), id=f"f-{name}", max_length=FIELD_CHARS_MAX)
            yield Static("", id="form-error")
            with Horizontal():
                yield Button(t("ok", self.locale), id="ok", variant="primary")
                yield Button(t("cancel", self.locale), id="cancel")

    def _submit(self) -> None:
        values = {name: self.query_one(f"#f-{name}", Input).value.strip() for name, _ in self.fields}
        missing = [label for name, label in self.fields if name in self.required and not values[name]]
        problem = f"{missing[0]} {t('required', self.locale)}" if missing else (self.check(values) if self.check
                                                                               else None)
        if problem:
            self.query_one("#form-error", Static).update(problem)
            return
        self.dismiss(values)

    @on(Button.Pressed, "#ok")
    def ok(self) -> None:
        self._submit()

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        """Enter moves to the next field, and on the last one sends the form."""
        inputs = list(self.query(Input))
        at = inputs.index(event.input)
        if at + 1 < len(inputs):
            inputs[at + 1].focus()
        else:
            self._submit()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class LoginScreen(Screen[None]):
    def __init__(self, locale: str, username: str = "") -> None:
        super().__init__()
        self.locale = locale
        self.username = username

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="login"):
            yield Label(t("user", self.locale))
            yield Input(value=self.username, id="username", max_length=64)
            yield Label(t("pin", self.locale))
            yield Input(password=True, id="pin", max_length=32)
            yield Button(t("login", self.locale), id="login-button", variant="primary")
            yield Static("", id="login-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#pin" if self.username else "#username", Input).focus()

    @on(Input.Submitted, "#username")
    def to_pin(self) -> None:
        self.query_one("#pin", Input).focus()

    @on(Button.Pressed, "#login-button")
    @on(Input.Submitted, "#pin")
    async def login(self) -> None:
        app: ManagerConsole = self.app  # type: ignore[assignment]
        username = self.query_one("#username", Input).value.strip()
        pin_input = self.query_one("#pin", Input)
        try:
            await app.api.login(username, pin_input.value)
        except ApiError as exc:
            pin_input.value = ""
            self.query_one("#login-error", Static).update(exc.detail)
            return
        app.switch_screen(MainScreen(self.locale))  # not awaited: this screen is the one going away


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("f2", "enrol", "Enrol"), Binding("f3", "issue", "Issue card"),
        Binding("f4", "replace", "Replace card"), Binding("f5", "block", "Block card"),
        Binding("f6", "adjust", "Adjust points"),
    ]

    def __init__(self, locale: str) -> None:
        super().__init__()
        self.locale = locale
        self.member: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        L = self.locale  # noqa: N806
        yield Header()
        with Horizontal(id="search"):
            yield Input(placeholder=t("lookup", L), id="lookup", max_length=40)
            yield Button(t("find", L), id="find")
        yield Static("", id="member")
        yield DataTable(id="cards", cursor_type="row")
        with Horizontal(id="actions"):
            for key in ("enrol", "issue", "replace", "block", "adjust"):
                yield Button(t(key, L), id=f"do-{key}")
            yield Button(t("logout", L), id="logout")
        yield Static("", id="message")
        yield Static("", id="reader")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#cards", DataTable)
        table.add_columns(t("card_number", self.locale), t("status", self.locale), "")
        self.query_one("#lookup", Input).focus()
        self.listen()

    @property
    def api(self) -> AgentApi:
        return self.app.api  # type: ignore[attr-defined, no-any-return]

    def say(self, text: str) -> None:
        self.query_one("#message", Static).update(text)

    def show(self, member: dict[str, Any] | None) -> None:
        self.member = member
        table = self.query_one("#cards", DataTable)
        table.clear()
        if member is None:
            self.query_one("#member", Static).update("")
            return
        L = self.locale  # noqa: N806
        self.query_one("#member", Static).update(
            f"{member['name']}  ·  {member['mobile']}  ·  {t('tier', L)}: {member['tier']}  ·  "
            f"{t('balance', L)}: {member['balance']:,}")
        for card in member["cards"]:
            table.add_row(card["number"], card["status"], card["technology"])

    async def find(self, query: str) -> None:
        if not query:
            return
        try:
            self.show(await self.api.lookup(query))
            self.say("")
        except ApiError as exc:
            self.show(None)
            self.say(exc.detail)

    async def refresh_member(self) -> None:
        if self.member is not None:  # by an active card, else (none, or none left) by mobile
            usable = [c["number"] for c in self.member["cards"] if c["status"] == "active"]
            await self.find(usable[0] if usable else self.member["mobile"])

    @on(Button.Pressed, "#find")
    @on(Input.Submitted, "#lookup")
    async def find_typed(self) -> None:
        await self.find(self.query_one("#lookup", Input).value.strip())

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        name = event.button.id or ""
        if name == "logout":
            self.app.exit()
        elif name.startswith("do-"):
            await self.run_action(name.removeprefix("do-"))

    async def _form(self, title: str, fields: list[str], required: tuple[str, ...],
                    check: Callable[[dict[str, str]], str | None] | None = None,
                    values: dict[str, str] | None = None) -> dict[str, str] | None:
        form = FormScreen(title, [(f, t(f, self.locale)) for f in fields], self.locale, required, check, values)
        return await self.app.push_screen_wait(form)

    async def _do(self, call: Any, done: str) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = await call
        except ApiError as exc:
            self.say(exc.detail)
            return None
        self.say(done)
        return answer

    @work(exclusive=True, group="action")
    async def action_enrol(self) -> None:
        v = await self._form(t("enrol", self.locale), ["name", "mobile", "birth_date", "referrer"], ("name", "mobile"))
        if v is None:
            return
        member = await self._do(self.api.enrol(v["name"], v["mobile"], v["birth_date"] or None, v["referrer"] or None),
                                t("enrolled", self.locale))
        if member is not None:
            self.show({**member, "cards": member.get("cards", [])})

    @work(exclusive=True, group="action")
    async def action_issue(self) -> None:
        if self.member is None:
            self.say(t("no_member", self.locale))
            return
        v = await self._form(t("issue", self.locale), ["card_number"], ("card_number",))
        if v is None:
            return
        if await self._do(self.api.issue_card(self.member["id"], v["card_number"]), t("issued", self.locale)):
            await self.find(v["card_number"])
            self.say(t("issued", self.locale))

    @work(exclusive=True, group="action")
    async def action_replace(self) -> None:
        current = self._selected_card()
        v = await self._form(t("replace", self.locale), ["old_card", "new_card", "reason"], ("old_card", "new_card"),
                             values={"old_card": current or "", "reason": "lost"})
        if v is None:
            return
        if await self._do(self.api.replace_card(v["old_card"], v["new_card"], v["reason"] or "lost"),
                          t("replaced", self.locale)):
            await self.find(v["new_card"])
            self.say(t("replaced", self.locale))

    @work(exclusive=True, group="action")
    async def action_block(self) -> None:
        v = await self._form(t("block", self.locale), ["card_number", "reason"], ("card_number", "reason"),
                             values={"card_number": self._selected_card() or ""})
        if v is None:
            return
        if await self._do(self.api.block_card(v["card_number"], v["reason"]), t("blocked", self.locale)):
            await self.refresh_member()
            self.say(t("blocked", self.locale))

    @work(exclusive=True, group="action")
    async def action_adjust(self) -> None:
        if self.member is None:
            self.say(t("no_member", self.locale))
            return

        def whole(values: dict[str, str]) -> str | None:
            try:
                int(values["points"])
            except ValueError:
                return f"{t('points', self.locale)}: {t('whole_number', self.locale)}"
            return None

        v = await self._form(t("adjust", self.locale), ["points", "reason"], ("points", "reason"), whole)
        if v is None:
            return
        answer = await self._do(self.api.adjust(self.member["id"], int(v["points"]), v["reason"]),
                                t("adjusted", self.locale))
        if answer is not None:
            await self.refresh_member()
            self.say(f"{t('adjusted', self.locale)}: {answer['balance']:,}")

    def _selected_card(self) -> str | None:
        table = self.query_one("#cards", DataTable)
        if self.member is None or not table.row_count:
            return None
        return str(table.get_row_at(table.cursor_row)[0])

    @work(exclusive=True, group="events")
    async def listen(self) -> None:
        """Card reads from the till's readers fill the lookup; reader states show below."""
        reader = self.query_one("#reader", Static)
        while True:
            try:
                async for event in self.api.events():
                    if event["type"] == "card":
                        self.query_one("#lookup", Input).value = event["number"]
                        await self.find(event["number"])
                    elif event["type"] == "card_refused":
                        self.say(f"{event.get('masked', '')}: {event.get('reason', '')}")
                    elif event["type"] == "reader":
                        reader.update(f"{t('reader', self.locale)} {event.get('reader_id', '')}: "
                                      f"{event.get('state', '')} {event.get('detail', '') or ''}")
            except ApiError as exc:
                reader.update(exc.detail)
            await asyncio.sleep(EVENTS_RETRY_S)


class ManagerConsole(App[None]):
    CSS = """
    #login, #form { width: 60; height: auto; max-height: 100%; padding: 0 2; border: round $accent;
                    overflow-y: auto; }
    LoginScreen, FormScreen { align: center middle; }
    #search { height: auto; }
    #lookup { width: 1fr; }
    #member { padding: 1 1; text-style: bold; }
    #cards { height: 8; }
    #actions { height: auto; }
    #message { padding: 0 1; color: $warning; }
    #form-error, #login-error { color: $error; }
    #reader { padding: 0 1; color: $text-muted; }
    """

    def __init__(self, api: AgentApi, locale: str, username: str = "") -> None:
        super().__init__()
        self.api = api
        self.locale = locale
        self.username = username
        self.title = t("title", locale)

    def on_mount(self) -> None:
        self.push_screen(LoginScreen(self.locale, self.username))

    async def on_unmount(self) -> None:
        await self.api.close()
