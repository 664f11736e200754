"""The manager's and admin's other tasks, each a screen over the member screen (Esc
goes back): a member's history, gift cards, users (admin), the audit log, and the
agent's status at a glance."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable

from terminal_agent import i18n
from terminal_agent.tui.base import Base, ConfirmScreen, Field, FormScreen
from terminal_agent.tui.members import MANAGERS, progress_text
from terminal_agent.tui.texts import has
from terminal_agent.tui.widgets import BidiInput, Look, Table, Words

BACK = [Binding("escape", "back", show=False)]
IRAN = timezone(timedelta(minutes=210))


class TaskScreen(Base):
    KEYS = [("esc", "do.back"), ("ctrl_c", "do.quit")]
    BINDINGS = BACK

    def action_back(self) -> None:
        self.app.pop_screen()

    def form(self, title_key: str, fields: list[Field], then: Any, check: Any = None, **title: Any) -> None:
        self.app.push_screen(FormScreen(self.look.t(title_key, **title), fields, check),
                             lambda values: then(values) if values is not None else None)

    def row(self, *widgets: Any, classes: str = "row") -> Horizontal:
        return Horizontal(*(reversed(widgets) if self.look.rtl else widgets), classes=classes)


def explain(look: Look, app: Any, item: dict[str, Any]) -> str:
    """What a history item was, in the user's language. A sale's points carry the
    words the loyalty table gave them at the till (kept with the sale)."""
    kind, rule, reason = item["kind"], item.get("rule_id") or "", item.get("reason") or ""
    own = item.get(f"explanation_{'fa' if look.locale == 'fa' else 'en'}")
    if own:
        return look.digits(own)
    if kind == "redeem":
        return look.t("expl.redeem", rial=look.rial(item["amount"]), n=look.num(-item["points"]))
    if kind == "reverse":
        if rule == "spent-points-deducted":
            return look.t("expl.settled", rial=look.rial(item["amount"]))
        return look.t("expl.return_redeem" if rule == "return-redeem" else "expl.reverse_earn")
    if kind == "tier" and " -> " in reason:
        old, new = reason.split(" -> ", 1)
        return look.t("expl.tier", old=app.tier_name(old), new=app.tier_name(new))
    if kind == "adjust":
        return look.t("expl.adjust", actor=item.get("actor", ""), reason=reason)
    if kind == "expire":
        return look.t("expl.expire")
    if kind == "bonus":
        return look.t({"sign-up bonus": "expl.signup", "referral": "expl.referral"}.get(reason, "expl.bonus"))
    if kind == "earn":
        return look.t("expl.earn", rial=look.rial(item["amount"]))
    if kind in ("sale", "refund"):
        return look.t(f"expl.{kind}_none", rial=look.rial(item["amount"]))
    return look.t(f"kind.{kind}") if has(f"kind.{kind}") else kind


class HistoryScreen(TaskScreen):
    TITLE_KEY = "title.history"

    def __init__(self, member: dict[str, Any]) -> None:
        super().__init__()
        self.member = member

    def body(self) -> ComposeResult:
        with Vertical(id="content"):
            yield Words("", id="customer")
            yield Horizontal(Table(["when", "what", "change", "balance_after", "receipt"], id="history"),
                             classes="table-box")
            yield Words("", id="detail")

    def on_mount(self) -> None:
        self.show_member(None)
        self.call("history", self.api.history, self.member["id"], 100)
        self.query_one("#history", Table).focus()

    def show_member(self, progress: dict[str, Any] | None) -> None:
        look, m = self.look, self.member
        app: Any = self.app
        text = (f"{look.name(m['name'])} · {look.t('tier')}: {app.tier_name(m['tier'])} · {look.t('balance')}: "
                f"{look.t('points_n', n=look.num(m['balance']))}")
        if progress:
            text += "\n" + progress_text(self, progress)
        self.query_one("#customer", Words).update(text)

    def got_history(self, answer: dict[str, Any]) -> None:
        look = self.look
        self.show_member(answer["progress"])
        rows = []
        for item in answer["items"]:
            what = look.t(f"kind.{item['kind']}") if has(f"kind.{item['kind']}") else item["kind"]
            rows.append(([look.when(item["at"]), what, look.signed(item["points"]), look.num(item["balance_after"]),
                          look.ident(item.get("receipt_ref") or "")], item))
        table = self.query_one("#history", Table)
        table.fill(rows)
        if not rows:
            self.query_one("#detail", Words).update(look.t("nothing"))
        else:
            self._detail(0)

    def _detail(self, index: int) -> None:
        table = self.query_one("#history", Table)
        if 0 <= index < len(table.row_data):
            self.query_one("#detail", Words).update(explain(self.look, self.app, table.row_data[index]))

    @on(DataTable.RowHighlighted, "#history")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)


class GiftScreen(TaskScreen):
    TITLE_KEY = "title.gift"
    KEYS = [("f2", "gift.balance"), ("f3", "gift.issue"), ("f4", "gift.load"), ("esc", "do.back"),
            ("ctrl_c", "do.quit")]
    BINDINGS = BACK + [Binding("f2", "balance", show=False), Binding("f3", "issue", show=False),
                       Binding("f4", "load", show=False)]

    def body(self) -> ComposeResult:
        with Vertical(id="content"):
            yield Words(self.look.t("gift_number"), classes="label")
            yield BidiInput(id="gift-number", max_length=32)
            yield from self.buttons(("balance", "gift.balance", "primary"), ("issue", "gift.issue", "default"),
                                    ("load", "gift.load", "default"))
            yield Words("", id="result")

    def on_mount(self) -> None:
        self.query_one("#gift-number", BidiInput).focus()

    def number(self) -> str | None:
        text = i18n.latin_digits(self.query_one("#gift-number", BidiInput).value.strip())
        if not text:
            self.say(self.look.t("required", field=self.look.t("gift_number")), error=True)
            return None
        return text

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        await self.run_action(str(event.button.id))

    @on(BidiInput.Submitted, "#gift-number")
    def action_balance(self) -> None:
        number = self.number()
        if number:
            self.call("balance", self.api.gift_balance, number)

    def got_balance(self, answer: dict[str, Any]) -> None:
        self.say("")
        self.query_one("#result", Words).update(self.look.t(
            "gift.holds", card=self.look.digits(answer["number"]), rial=self.look.rial(answer["balance"])))

    def action_issue(self) -> None:
        number = self.number()
        if number and self.allowed(*MANAGERS):
            self.form("gift.issue", [Field("amount", "amount_rial", "amount")],
                      lambda v: self.call("issue", self.api.gift_issue, number, v["amount"]))

    def got_issue(self, answer: dict[str, Any]) -> None:
        self.say(self.look.t("gift.issued", card=self.look.digits(answer["number"]),
                             rial=self.look.rial(answer["balance"])))
        self.query_one("#result", Words).update("")

    def action_load(self) -> None:
        number = self.number()
        if number and self.allowed(*MANAGERS):
            self.form("gift.load", [Field("amount", "amount_rial", "amount")],
                      lambda v: self.call("load", self.api.gift_load, number, v["amount"]))

    def got_load(self, answer: dict[str, Any]) -> None:
        self.say(self.look.t("gift.loaded", card=self.look.digits(answer["number"]),
                             rial=self.look.rial(answer["balance"])))
        self.query_one("#result", Words).update("")


PIN_MIN = {"cashier": 4, "manager": 6, "admin": 6}


def pin_check(look: Look, role: str) -> Any:
    def check(values: dict[str, Any]) -> str | None:
        pin = values.get("pin") or ""
        if pin != values.get("pin_again"):
            return look.t("pins_differ")
        if not pin.isdigit() or not PIN_MIN.get(role, 4) <= len(pin) <= 12:
            return look.t("pin_digits", role=look.t(f"role.{role}"), min=look.num(PIN_MIN.get(role, 4)))
        return None
    return check


class UsersScreen(TaskScreen):
    TITLE_KEY = "title.users"
    KEYS = [("f2", "users.add"), ("f3", "users.toggle"), ("f4", "users.pin"), ("esc", "do.back"),
            ("ctrl_c", "do.quit")]
    BINDINGS = BACK + [Binding("f2", "add", show=False), Binding("f3", "toggle", show=False),
                       Binding("f4", "pin", show=False)]

    def body(self) -> ComposeResult:
        with Vertical(id="content"):
            yield from self.buttons(("add", "users.add", "primary"), ("toggle", "users.toggle", "default"),
                                    ("pin", "users.pin", "default"))
            yield Horizontal(Table(["username", "role", "status", "created"], id="users"), classes="table-box")

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#users", Table).focus()

    def reload(self) -> None:
        if self.allowed("admin"):
            self.call("users", self.api.users)

    def got_users(self, users: list[dict[str, Any]]) -> None:
        look = self.look
        rows = []
        for u in users:
            state = "user.disabled" if u["disabled"] else "user.locked" if u.get("locked_until") else "user.enabled"
            rows.append(([u["username"], look.t(f"role.{u['role']}"), look.t(state), look.when(u["created_at"])[:10]
                          if look.locale != "fa" else look.when(u["created_at"]).split(" ")[0]], u))
        self.query_one("#users", Table).fill(rows)

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        await self.run_action(str(event.button.id))

    def _chosen(self) -> dict[str, Any] | None:
        user = self.query_one("#users", Table).chosen
        if user is None:
            self.say(self.look.t("no_selection"), error=True)
        return user  # type: ignore[no-any-return]

    def action_add(self) -> None:
        if not self.allowed("admin"):
            return

        def check(values: dict[str, Any]) -> str | None:
            return pin_check(self.look, values["role"])(values)

        self.form("users.add", [Field("username", "username"), Field("role", "role_choice", "role"),
                                Field("pin", "pin", "pin"), Field("pin_again", "pin_again", "pin")],
                  lambda v: self.call("add", self.api.add_user, v["username"], v["role"], v["pin"]), check)

    def got_add(self, user: dict[str, Any]) -> None:
        self.say(self.look.t("users.added", user=user["username"]))
        self.reload()

    def action_toggle(self) -> None:
        user = self._chosen()
        if user is None or not self.allowed("admin"):
            return
        name = user["username"]
        if user["disabled"]:
            self.call("toggle", self.api.set_disabled, name, False)
            return
        self.app.push_screen(ConfirmScreen(self.look.t("users.disable_ask", user=name)),
                             lambda yes: self.call("toggle", self.api.set_disabled, name, True) if yes else None)

    def got_toggle(self, user: dict[str, Any]) -> None:
        self.say(self.look.t("users.now_disabled" if user["disabled"] else "users.now_enabled",
                             user=user["username"]))
        self.reload()

    def action_pin(self) -> None:
        user = self._chosen()
        if user is None or not self.allowed("admin"):
            return
        name = user["username"]
        self.form("users.pin", [Field("pin", "pin", "pin"), Field("pin_again", "pin_again", "pin")],
                  lambda v: self.call("pin", self.api.set_pin, name, v["pin"]), pin_check(self.look, user["role"]))

    def got_pin(self, answer: dict[str, Any]) -> None:
        self.say(self.look.t("users.pin_set", user=answer["username"]))


def detail_value(look: Look, value: Any) -> str:
    if isinstance(value, bool):
        return look.t("yes" if value else "no")
    if isinstance(value, int):
        return look.num(value)
    if isinstance(value, str):
        return look.name(look.t(f"role.{value}") if has(f"role.{value}") else look.ident(value))
    return look.digits(json.dumps(value, ensure_ascii=False))


def audit_action(look: Look, action: str) -> str:
    return look.t(f"audit.{action}") if has(f"audit.{action}") else action


class AuditScreen(TaskScreen):
    TITLE_KEY = "title.audit"
    KEYS = [("enter", "filter.apply"), ("esc", "do.back"), ("ctrl_c", "do.quit")]

    def body(self) -> ComposeResult:
        look = self.look
        example = look.digits(i18n.DATE_EXAMPLE[look.locale])
        with Vertical(id="content"):
            yield self.row(BidiInput(placeholder=look.t("filter.actor"), id="actor", max_length=64),
                           BidiInput(placeholder=look.t("filter.action"), id="action", max_length=64))
            yield self.row(BidiInput(placeholder=look.t("filter.since", example=example), id="since", max_length=10),
                           BidiInput(placeholder=look.t("filter.until", example=example), id="until", max_length=10),
                           Button(look.line(look.t("filter.apply")), id="apply", compact=True))
            yield Horizontal(Table(["when", "actor", "action", "target"], id="audit"), classes="table-box")
            yield Words("", id="detail")

    def on_mount(self) -> None:
        self.apply()
        self.query_one("#actor", BidiInput).focus()

    def _day(self, name: str) -> tuple[bool, datetime | None]:
        text = self.query_one(f"#{name}", BidiInput).value.strip()
        if not text:
            return True, None
        day = i18n.parse_day(text, self.look.locale)
        if day is None:
            label = self.look.t(f"filter.{name}", example=self.look.digits(i18n.DATE_EXAMPLE[self.look.locale]))
            self.say(self.look.t("bad_date", field=label, example=self.look.digits(
                i18n.DATE_EXAMPLE[self.look.locale])), error=True)
            return False, None
        at = datetime.combine(day, time(0), IRAN)
        return True, at + timedelta(days=1) if name == "until" else at

    @on(Button.Pressed, "#apply")
    @on(BidiInput.Submitted)
    def apply(self) -> None:
        ok_since, since = self._day("since")
        ok_until, until = self._day("until")
        if not (ok_since and ok_until):
            return
        self.say("")
        filters = {"actor": self.query_one("#actor", BidiInput).value.strip(),
                   "action": self.query_one("#action", BidiInput).value.strip(),
                   "since": since.isoformat() if since else None, "until": until.isoformat() if until else None}
        self.call("audit", lambda: self.api.audit(**filters))

    def got_audit(self, rows: list[dict[str, Any]]) -> None:
        look = self.look
        self.query_one("#audit", Table).fill([
            ([look.when(r["at"]), r["actor"], audit_action(look, r["action"]), look.ident(r.get("target") or "")], r)
            for r in rows])
        self.query_one("#detail", Words).update("" if rows else look.t("nothing"))
        if rows:
            self._detail(0)

    def _detail(self, index: int) -> None:
        table = self.query_one("#audit", Table)
        if 0 <= index < len(table.row_data):
            detail = table.row_data[index].get("detail") or {}
            look = self.look
            self.query_one("#detail", Words).update(" · ".join(
                f"{look.t(f'detail.{k}') if has(f'detail.{k}') else k}: {detail_value(look, v)}"
                for k, v in detail.items()))

    @on(DataTable.RowHighlighted, "#audit")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)


class StatusScreen(TaskScreen):
    TITLE_KEY = "title.status"
    KEYS = [("f5", "do.refresh"), ("esc", "do.back"), ("ctrl_c", "do.quit")]
    BINDINGS = BACK + [Binding("f5", "reload", show=False)]

    def body(self) -> ComposeResult:
        with Vertical(id="content"):
            yield Words("", id="status-text")

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.call("status", self.api.status)

    def got_status(self, s: dict[str, Any]) -> None:
        look = self.look
        lines = [look.t("status.terminal", terminal=s["terminal"], store=s["store"], since=look.when(s["started_at"])),
                 look.t("status.ledger", members=look.num(s["ledger"]["members"]),
                        entries=look.num(s["ledger"]["entries"]))]
        sync = s.get("sync_hub") or {}
        lines.append(look.t("status.sync", backlog=look.num(int(sync.get("backlog", s["sync"]["backlog"])))))
        if sync.get("last_success_at"):
            lines.append(look.t("status.sync_ok", at=look.when(str(sync["last_success_at"]).replace("Z", "+00:00"))))
        elif sync:
            lines.append(look.t("status.sync_never"))
        if sync.get("last_error"):
            lines.append(look.t("status.sync_error", error=sync["last_error"]))
        stock = s.get("card_stock")
        if stock:
            lines.append(look.t("status.card_stock_required" if stock.get("required") else "status.card_stock",
                                count=look.num(int(stock.get("in_stock", 0)))))
        readers = s.get("readers") or []
        if not readers:
            lines.append(look.t("status.readers_none"))
        for r in readers:
            key = f"reader.{r.get('state', '')}"
            lines.append(look.t("reader", id=r.get("reader_id", ""),
                                state=look.t(key) if has(key) else str(r.get("state", ""))))
        printer = s.get("printer")
        if not printer:
            lines.append(look.t("status.printer_none"))
        else:
            lines.append(look.t("status.printer", state=look.t("printer.failing" if printer.get("last_error")
                                                                else "printer.ok")))
        self.query_one("#status-text", Words).update("\n".join(lines))
