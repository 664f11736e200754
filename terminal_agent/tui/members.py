"""The manager's home: find a member by card (typed or swiped) or mobile, see their
cards, tier and where they stand in the tier window; enrol, issue, replace, block,
adjust; and the menu of every other task the user's role allows."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, OptionList

from terminal_agent import i18n
from terminal_agent.tui.base import PASSING_CODES, Base, CardRefused, CardSwiped, Field, FormScreen, ReaderChanged
from terminal_agent.tui.widgets import BidiInput, Menu, Table, Words

MANAGERS = ("manager", "admin")
# (action, catalogue key, key cap, roles)
TASKS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("enrol", "menu.enrol", "F2", MANAGERS),
    ("issue", "menu.issue", "F3", MANAGERS),
    ("replace", "menu.replace", "F4", MANAGERS),
    ("block", "menu.block", "F5", MANAGERS),
    ("adjust", "menu.adjust", "F6", MANAGERS),
    ("history", "menu.history", "F7", MANAGERS),
    ("gift", "menu.gift", "F8", MANAGERS),
    ("users", "menu.users", "F9", ("admin",)),
    ("audit", "menu.audit", "", MANAGERS),
    ("status", "menu.status", "", MANAGERS),
    ("till", "menu.till", "", MANAGERS),
    ("logout", "menu.logout", "", MANAGERS),
]


def member_lines(screen: Base, member: dict[str, Any], progress: dict[str, Any] | None) -> str:
    look = screen.look
    app: Any = screen.app
    first = f"{look.name(member['name'])} · {look.digits(member['mobile'])}"
    if member.get("birth_date"):
        first += " · " + look.t("born", date=look.day(member["birth_date"]))
    lines = [first, f"{look.t('tier')}: {app.tier_name(member['tier'])} · {look.t('balance')}: "
                    f"{look.t('points_n', n=look.num(member['balance']))}"]
    if progress:
        lines.append(progress_text(screen, progress))
    return "\n".join(lines)


def progress_text(screen: Base, progress: dict[str, Any]) -> str:
    look = screen.look
    app: Any = screen.app
    if not progress.get("next_tier"):
        return look.t("progress.top")
    needed = progress["needed"]
    amount = look.rial(needed) if progress["basis"] == "spend" else look.t("progress.points", n=look.num(needed))
    return look.t("progress.next", amount=amount, tier=app.tier_name(progress["next_tier"]),
                  days=look.num(progress["window_days"]))


class MemberScreen(Base):
    TITLE_KEY = "title.manager"
    KEYS = [("f1", "do.menu"), ("tab", "do.next_field"), ("ctrl_c", "do.quit")]
    BINDINGS = [Binding("f1", "menu", show=False)] + [
        Binding(cap.lower(), action, show=False) for action, _, cap, _ in TASKS if cap]

    def __init__(self) -> None:
        super().__init__()
        self.member: dict[str, Any] | None = None
        self.progress: dict[str, Any] | None = None

    def body(self) -> ComposeResult:
        look = self.look
        role = self.api.role or ""
        menu = Menu([(a, key, cap) for a, key, cap, roles in TASKS if role in roles], id="menu")
        with Horizontal(id="main"):
            if not look.rtl:
                yield menu
            with Vertical(id="content"):
                search = [BidiInput(placeholder=look.t("lookup"), id="lookup", max_length=40),
                          Button(look.line(look.t("find")), id="find", compact=True)]
                with Horizontal(id="search"):
                    yield from (reversed(search) if look.rtl else search)
                yield Words("", id="member")
                yield Horizontal(Table(["card_number", "status", "technology"], id="cards"), classes="table-box")
                yield Words("", id="reader")
            if look.rtl:
                yield menu

    def on_mount(self) -> None:
        self.query_one("#lookup", BidiInput).focus()

    # -- finding and showing --

    def show(self, member: dict[str, Any] | None) -> None:
        self.member = member
        if member is None:
            self.progress = None
            self.query_one("#member", Words).update("")
            self.query_one("#cards", Table).fill([])
            return
        self.query_one("#member", Words).update(member_lines(self, member, self.progress))
        look = self.look
        self.query_one("#cards", Table).fill([
            ([look.digits(c["number"]), look.t(f"card.{c['status']}"), look.t(f"tech.{c['technology']}")], c)
            for c in member.get("cards", [])])

    def find(self, query: str, quiet: bool = False) -> None:
        if query:
            self.call("refind" if quiet else "find", self.api.lookup, query)

    def got_find(self, member: dict[str, Any]) -> None:
        self.say("")
        self.got_refind(member)

    def got_refind(self, member: dict[str, Any]) -> None:
        if self.member is None or self.member["id"] != member["id"]:
            self.progress = None
        self.show(member)
        self.call("progress", self.api.history, member["id"], 1)

    def got_progress(self, answer: dict[str, Any]) -> None:
        if self.member is not None and answer["member_id"] == self.member["id"]:
            self.progress = answer["progress"]
            self.show(self.member)

    def failed_progress(self, error: Any) -> bool:
        return True  # the member is shown without it

    def failed_find(self, error: Any) -> bool:
        if error.code not in PASSING_CODES:
            self.show(None)
        return False

    def refresh_member(self, not_by: str = "") -> None:
        """Look the member up again: by an active card (not one just blocked), else by mobile."""
        if self.member is not None:
            usable = [c["number"] for c in self.member.get("cards", []) if c["status"] == "active"
                      and c["number"] != not_by]
            self.find(usable[0] if usable else self.member["mobile"], quiet=True)

    def failed_refind(self, error: Any) -> bool:
        return True  # the action's own message stays; the member shown is the one it was done to

    @on(Button.Pressed, "#find")
    @on(BidiInput.Submitted, "#lookup")
    def find_typed(self) -> None:
        self.find(self.query_one("#lookup", BidiInput).value.strip())

    def on_card_swiped(self, message: CardSwiped) -> None:
        self.query_one("#lookup", BidiInput).value = message.number
        self.find(message.number)

    def on_card_refused(self, message: CardRefused) -> None:
        why = self.look.error(message.reason) if message.reason else ""
        self.say(self.look.t("swiped_refused", card=self.look.digits(message.masked), why=why), error=True)

    def on_reader_changed(self, message: ReaderChanged) -> None:
        state = message.state
        key = f"reader.{state.get('state', '')}"
        from terminal_agent.tui.texts import has

        self.query_one("#reader", Words).update(self.look.t(
            "reader", id=state.get("reader_id", ""), state=self.look.t(key) if has(key) else state.get("state", "")))

    # -- the menu --

    def action_menu(self) -> None:
        self.query_one("#menu", Menu).focus()

    @on(OptionList.OptionSelected, "#menu")
    async def chosen(self, event: OptionList.OptionSelected) -> None:
        await self.run_action(str(event.option.id))

    def _form(self, title_key: str, fields: list[Field], then: Any) -> None:
        self.app.push_screen(FormScreen(self.look.t(title_key), fields),
                             lambda values: then(values) if values is not None else None)

    def _need_member(self) -> bool:
        if self.member is None:
            self.say(self.look.t("no_member"), error=True)
            return False
        return True

    def _selected_card(self) -> str:
        card = self.query_one("#cards", Table).chosen
        return str(card["number"]) if card else ""

    def action_enrol(self) -> None:
        if not self.allowed(*MANAGERS):
            return
        example = self.look.digits(i18n.DATE_EXAMPLE[self.look.locale])
        self._form("menu.enrol", [
            Field("name", "name"), Field("mobile", "mobile", "mobile"),
            Field("birth_date", "birth_date", "date", required=False, past=True, label_values={"example": example}),
            Field("referrer", "referrer", "card", required=False)],
            lambda v: self.call("enrol", self.api.enrol, v["name"], v["mobile"], v["birth_date"], v["referrer"]))

    def got_enrol(self, member: dict[str, Any]) -> None:
        self.progress = None
        self.show(member)
        self.call("progress", self.api.history, member["id"], 1)
        self.say(self.look.t("enrolled"))

    def action_issue(self) -> None:
        if not self.allowed(*MANAGERS) or not self._need_member():
            return
        member_id = self.member["id"]  # type: ignore[index]
        self._form("menu.issue", [Field("card_number", "card_number", "card")],
                   lambda v: self.call("issue", self.api.issue_card, member_id, v["card_number"]))

    def got_issue(self, card: dict[str, Any]) -> None:
        self.find(card["number"], quiet=True)
        self.say(self.look.t("issued"))

    def action_replace(self) -> None:
        if not self.allowed(*MANAGERS):
            return
        self._form("menu.replace", [
            Field("old_card", "old_card", "card", value=self._selected_card()),
            Field("new_card", "new_card", "card"), Field("reason", "reason", value=self.look.t("reason.lost"))],
            lambda v: self.call("replace", self.api.replace_card, v["old_card"], v["new_card"], v["reason"]))

    def got_replace(self, card: dict[str, Any]) -> None:
        self.find(card["number"], quiet=True)
        self.say(self.look.t("replaced"))

    def action_block(self) -> None:
        if not self.allowed(*MANAGERS):
            return
        self._form("menu.block", [
            Field("card_number", "card_number", "card", value=self._selected_card()),
            Field("reason", "reason", value=self.look.t("reason.lost"))],
            lambda v: self.call("block", self.api.block_card, v["card_number"], v["reason"]))

    def got_block(self, card: dict[str, Any]) -> None:
        self.refresh_member(not_by=card["number"])
        self.say(self.look.t("blocked"))

    def action_adjust(self) -> None:
        if not self.allowed(*MANAGERS) or not self._need_member():
            return
        member_id = self.member["id"]  # type: ignore[index]
        self._form("menu.adjust", [Field("points", "points", "whole"), Field("reason", "reason")],
                   lambda v: self.call("adjust", self.api.adjust, member_id, v["points"], v["reason"]))

    def got_adjust(self, answer: dict[str, Any]) -> None:
        self.refresh_member()
        self.say(self.look.t("adjusted", n=self.look.num(answer["balance"])))

    def action_history(self) -> None:
        from terminal_agent.tui.tasks import HistoryScreen

        if self.allowed(*MANAGERS) and self._need_member():
            self.app.push_screen(HistoryScreen(self.member))  # type: ignore[arg-type]

    def action_gift(self) -> None:
        from terminal_agent.tui.tasks import GiftScreen

        if self.allowed(*MANAGERS):
            self.app.push_screen(GiftScreen())

    def action_users(self) -> None:
        from terminal_agent.tui.tasks import UsersScreen

        if self.allowed("admin"):
            self.app.push_screen(UsersScreen())

    def action_audit(self) -> None:
        from terminal_agent.tui.tasks import AuditScreen

        if self.allowed(*MANAGERS):
            self.app.push_screen(AuditScreen())

    def action_status(self) -> None:
        from terminal_agent.tui.tasks import StatusScreen

        if self.allowed(*MANAGERS):
            self.app.push_screen(StatusScreen())

    def action_till(self) -> None:
        from terminal_agent.tui.till import TillScreen

        self.app.push_screen(TillScreen())

    def action_logout(self) -> None:
        self.app.logout()  # type: ignore[attr-defined]
