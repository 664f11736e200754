"""The cashier's till, for shops without a POS: find the member (card swiped or typed,
or mobile), enter the purchase (an amount, with categories or several lines if
wanted), see what it earns and how many points can pay (POST /v1/quote), confirm
(POST /v1/sales), refund by receipt, take a gift card, print the slip. Through the
same local API and policies as a POS.

A sale's idempotency key is made once when the sale starts and sent again on every
try of it, so a retry after the agent went quiet never posts it twice; a new key is
made only when that sale is posted or the cashier starts another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, OptionList

from terminal_agent import i18n
from terminal_agent.tui.api import new_key
from terminal_agent.tui.base import PASSING_CODES, Base, CardRefused, CardSwiped, ConfirmScreen, Field, FormScreen
from terminal_agent.tui.tasks import TaskScreen
from terminal_agent.tui.widgets import BidiInput, Menu, Table, Words

MANAGERS = ("manager", "admin")
TILL_TASKS: list[tuple[str, str, str]] = [
    ("new_sale", "menu.sale", "F2"), ("quote", "menu.quote", "F3"), ("add_line", "menu.add_line", "F7"),
    ("confirm", "menu.confirm", "F9"), ("refund", "menu.refund", "F4"), ("gift_spend", "menu.gift_spend", "F5"),
    ("slip", "menu.slip", "F6"), ("logout", "menu.logout", ""),
]
ZERO_BASKET = [{"sku": "-", "name": "-", "category": "general", "quantity": 1, "unit_price": 0}]


def sale_lines(look: Any, app: Any, answer: dict[str, Any]) -> str:
    """What a posted sale did, in the user's words (the slip is the agent's)."""
    out = [look.t("r.receipt", ref=look.ident(answer["receipt_ref"])),
           look.t("r.amount", rial=look.rial(answer["amount"])), look.t("r.earned", n=look.num(answer["earned_points"]))]
    if answer["redeemed_points"]:
        out.append(look.t("r.redeemed", n=look.num(answer["redeemed_points"]), rial=look.rial(answer["redeemed_rial"])))
    if answer.get("discount_rial"):
        out.append(look.t("r.discount", rial=look.rial(answer["discount_rial"])))
    out.append(look.t("r.balance", n=look.num(answer["balance"]), tier=app.tier_name(answer["tier"])))
    if answer.get("debt_points"):
        out.append(look.t("r.debt", n=look.num(answer["debt_points"])))
    key = "explanation_fa" if look.locale == "fa" else "explanation_en"
    out += [f"• {look.digits(a[key])}" for a in answer.get("awards", []) if a.get("points")]
    return "\n".join(out)


def refund_lines(look: Any, answer: dict[str, Any]) -> str:
    out = [look.t("r.refund", rial=look.rial(answer["amount"])),
           look.t("r.reversed", n=look.num(answer["reversed_points"]), back=look.num(answer["returned_points"]))]
    if answer.get("deducted_rial"):
        out.append(look.t("r.deducted", n=look.num(answer["settled_points"]), rial=look.rial(answer["deducted_rial"]),
                          cash=look.rial(answer["cash_refund_rial"])))
    out.append(look.t("balance") + ": " + look.t("points_n", n=look.num(answer["balance"])))
    if answer.get("debt_points"):
        out.append(look.t("r.debt", n=look.num(answer["debt_points"])))
    return "\n".join(out)


def receipt_ref_now() -> str:
    return datetime.now().strftime("C%y%m%d-%H%M%S")


class TillScreen(Base):
    TITLE_KEY = "title.cashier"
    KEYS = [("f1", "do.menu"), ("enter", "do.next_field"), ("ctrl_c", "do.quit")]
    BINDINGS = [Binding("f1", "menu", show=False), Binding("escape", "back", show=False)] + [
        Binding(cap.lower(), action, show=False) for action, _, cap in TILL_TASKS if cap]

    def __init__(self) -> None:
        super().__init__()
        self.member: dict[str, Any] | None = None
        self.card: str | None = None
        self.lines: list[dict[str, Any]] = []
        self.quoted: dict[str, Any] | None = None
        self.sale_key = new_key()
        self.last_sale: dict[str, Any] | None = None
        self.gift: dict[str, Any] | None = None

    def field(self, label_key: str, widget: BidiInput) -> Horizontal:
        label = Words(self.look.t(label_key), classes="field-label")
        return Horizontal(*((widget, label) if self.look.rtl else (label, widget)), classes="field")

    def body(self) -> ComposeResult:
        look = self.look
        tasks = [(a, k, c) for a, k, c in TILL_TASKS if a != "logout" or self.api.role == "cashier"]
        menu = Menu(tasks, id="menu")
        with Horizontal(id="main"):
            if not look.rtl:
                yield menu
            with VerticalScroll(id="content"):
                search = [BidiInput(placeholder=look.t("lookup"), id="lookup", max_length=40),
                          Button(look.line(look.t("find")), id="find", compact=True)]
                with Horizontal(id="search"):
                    yield from (reversed(search) if look.rtl else search)
                yield Words("", id="customer")
                yield self.field("amount", BidiInput(id="amount", max_length=20))
                yield self.field("category", BidiInput(id="category", max_length=64))
                yield self.field("redeem", BidiInput(id="redeem", max_length=12))
                yield self.field("receipt_ref", BidiInput(receipt_ref_now(), id="receipt", max_length=64))
                yield Words("", id="lines")
                yield Words("", id="quote")
                yield Words("", id="sale")
            if look.rtl:
                yield menu

    def on_mount(self) -> None:
        self.query_one("#lookup", BidiInput).focus()

    def action_menu(self) -> None:
        self.query_one("#menu", Menu).focus()

    def action_back(self) -> None:
        if self.api.role in MANAGERS:
            self.app.pop_screen()

    @on(OptionList.OptionSelected, "#menu")
    async def chosen(self, event: OptionList.OptionSelected) -> None:
        await self.run_action(str(event.option.id))

    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", BidiInput).value.strip()

    # -- the member --

    @on(Button.Pressed, "#find")
    @on(BidiInput.Submitted, "#lookup")
    def find(self) -> None:
        query = i18n.latin_digits(self.value("lookup"))
        if query:
            self.call("find", self.api.lookup, query)

    def on_card_swiped(self, message: CardSwiped) -> None:
        self.query_one("#lookup", BidiInput).value = message.number
        self.call("find", self.api.lookup, message.number)

    def on_card_refused(self, message: CardRefused) -> None:
        why = self.look.error(message.reason) if message.reason else ""
        self.say(self.look.t("swiped_refused", card=self.look.digits(message.masked), why=why), error=True)

    def got_find(self, member: dict[str, Any]) -> None:
        query = i18n.latin_digits(self.value("lookup"))
        active = [c["number"] for c in member.get("cards", []) if c["status"] == "active"]
        self.member = member
        self.card = query if query in active else (active[0] if active else None)
        self.quoted = None
        self.say("" if self.card else self.look.t("err.card_refused"), error=not self.card)
        self.show_customer([])
        self.query_one("#quote", Words).update("")
        if self.card:
            self.call("offers", self.api.quote, self.card, ZERO_BASKET, 0)
        self.query_one("#amount", BidiInput).focus()

    def failed_find(self, error: Any) -> bool:
        if error.code not in PASSING_CODES:
            self.member = self.card = self.quoted = None
            self.query_one("#customer", Words).update("")
        return False

    def show_customer(self, offers: list[dict[str, Any]]) -> None:
        if self.member is None:
            return
        look, m = self.look, self.member
        app: Any = self.app
        text = (f"{look.name(m['name'])} · {look.t('tier')}: {app.tier_name(m['tier'])} · {look.t('balance')}: "
                f"{look.t('points_n', n=look.num(m['balance']))}")
        for offer in offers:
            text += "\n" + look.t("offer", text=look.digits(offer["text_fa" if look.locale == "fa" else "text_en"]))
        self.query_one("#customer", Words).update(text)

    def got_offers(self, plan: dict[str, Any]) -> None:
        self.show_customer(plan.get("offers", []))

    def failed_offers(self, error: Any) -> bool:
        return True  # no offers to mention

    # -- the purchase --

    def basket(self) -> list[dict[str, Any]] | None:
        """The lines added so far and the one being typed; None (and says why) if the
        amount typed is not a number."""
        lines = list(self.lines)
        text = self.value("amount")
        if text:
            amount = i18n.parse_whole(text)
            if amount is None or amount <= 0:
                self.say(self.look.t("positive_number", field=self.look.t("amount"), example=self.look.num(500_000)),
                         error=True)
                return None
            category = self.value("category") or "general"
            lines.append({"sku": category[:64], "name": category, "category": category, "quantity": 1,
                          "unit_price": amount})
        if not lines:
            self.say(self.look.t("required", field=self.look.t("amount")), error=True)
            return None
        return lines

    def redeem_points(self) -> int | None:
        text = self.value("redeem")
        if not text:
            return 0
        points = i18n.parse_whole(text)
        if points is None or points < 0:
            self.say(self.look.t("whole_number", field=self.look.t("redeem"), example=self.look.num(200)), error=True)
            return None
        return points

    def action_add_line(self) -> None:
        lines = self.basket()
        if lines is None:
            return
        self.lines = lines
        self.query_one("#amount", BidiInput).value = ""
        self.query_one("#category", BidiInput).value = ""
        look = self.look
        self.query_one("#lines", Words).update(look.t("lines_n", lines=" · ".join(
            f"{x['category']} {look.num(x['unit_price'])}" for x in self.lines)))
        self.query_one("#amount", BidiInput).focus()

    @on(BidiInput.Submitted, "#amount")
    @on(BidiInput.Submitted, "#category")
    @on(BidiInput.Submitted, "#redeem")
    def action_quote(self, event: BidiInput.Submitted | None = None) -> None:
        if self.card is None:
            self.say(self.look.t("no_member"), error=True)
            return
        lines, redeem = self.basket(), self.redeem_points()
        if lines is None or redeem is None:
            return
        self.say("")
        self.call("quote", self.api.quote, self.card, lines, redeem)
        if event is not None:
            after = {"amount": "#category", "category": "#redeem", "redeem": "#receipt"}
            self.query_one(after[str(event.input.id)], BidiInput).focus()

    def got_quote(self, plan: dict[str, Any]) -> None:
        look = self.look
        app: Any = self.app
        self.quoted = plan
        lines = self.basket() or []
        total = sum(x["unit_price"] * x["quantity"] for x in lines)
        out = [look.t("quote.earns", n=look.num(plan["earned_points"])),
               look.t("quote.can_pay", n=look.num(plan["max_redeem_points"]), rial=look.rial(plan["max_redeem_rial"]))]
        if plan["redeem_points"]:
            out.append(look.t("quote.pays", n=look.num(plan["redeem_points"]), rial=look.rial(plan["redeem_rial"])))
        discount = sum(a.get("rial", 0) for a in plan.get("awards", []) if a.get("kind") == "discount")
        if discount:
            out.append(look.t("quote.discount", rial=look.rial(discount)))
        out.append(look.t("quote.to_pay", rial=look.rial(max(total - plan["redeem_rial"] - discount, 0))))
        if plan.get("new_tier") and self.member and plan["new_tier"] != self.member["tier"]:
            out.append(look.t("quote.new_tier", tier=app.tier_name(plan["new_tier"])))
        self.query_one("#quote", Words).update("\n".join(out))
        self.show_customer(plan.get("offers", []))

    @on(BidiInput.Submitted, "#receipt")
    def action_confirm(self) -> None:
        if self.card is None:
            self.say(self.look.t("no_member"), error=True)
            return
        lines, redeem = self.basket(), self.redeem_points()
        receipt = self.value("receipt")
        if lines is None or redeem is None:
            return
        if not receipt:
            self.say(self.look.t("required", field=self.look.t("receipt_ref")), error=True)
            return
        if self.quoted is None:
            self.say(self.look.t("quote.first"), error=True)
            return
        look = self.look
        total = sum(x["unit_price"] * x["quantity"] for x in lines)
        question = look.t("sale.confirm", rial=look.rial(total), receipt=look.ident(receipt), n=look.num(redeem))
        card, key = self.card, self.sale_key
        self.app.push_screen(ConfirmScreen(question), lambda yes: self.call(
            "sale", self.api.sale, key, card, receipt, lines, redeem, look.locale) if yes else None)

    def got_sale(self, answer: dict[str, Any]) -> None:
        self.last_sale = answer
        self.query_one("#sale", Words).update(sale_lines(self.look, self.app, answer))
        self.say(self.look.t("sale.replayed" if answer.get("replayed") else "sale.done"))
        if self.member is not None:
            self.member = {**self.member, "balance": answer["balance"], "tier": answer["tier"]}
            self.show_customer([])
        self.start_over(keep_result=True)

    def start_over(self, keep_result: bool = False) -> None:
        """A new sale: a new idempotency key, an empty basket."""
        self.sale_key = new_key()
        self.lines, self.quoted = [], None
        for name in ("amount", "category", "redeem"):
            self.query_one(f"#{name}", BidiInput).value = ""
        self.query_one("#receipt", BidiInput).value = receipt_ref_now()
        self.query_one("#lines", Words).update("")
        self.query_one("#quote", Words).update("")
        if not keep_result:
            self.query_one("#sale", Words).update("")

    def action_new_sale(self) -> None:
        self.start_over()
        self.member = self.card = None
        self.query_one("#customer", Words).update("")
        self.query_one("#lookup", BidiInput).value = ""
        self.query_one("#lookup", BidiInput).focus()
        self.say("")

    # -- slip, refunds, gift cards --

    def action_slip(self) -> None:
        if self.last_sale is None:
            self.say(self.look.t("sale.none"), error=True)
            return
        self.call("slip", self.api.slip, self.last_sale["sale_id"], self.look.locale)

    def got_slip(self, answer: dict[str, Any]) -> None:
        self.say(self.look.t("slip.printed"))

    def action_refund(self) -> None:
        self.app.push_screen(RefundScreen())

    def action_gift_spend(self) -> None:
        receipt = self.value("receipt")
        self.app.push_screen(FormScreen(self.look.t("title.gift_spend"), [
            Field("number", "gift_number", "card"), Field("amount", "amount_rial", "amount"),
            Field("receipt", "receipt_ref", value=receipt)]), self._gift_asked)

    def _gift_asked(self, values: dict[str, Any] | None) -> None:
        if values is not None:
            self.gift = values
            self.call("gift_balance", self.api.gift_balance, values["number"])

    def got_gift_balance(self, answer: dict[str, Any]) -> None:
        gift, look = self.gift, self.look
        if gift is None:
            return
        question = look.t("gift.confirm", rial=look.rial(gift["amount"]), card=look.digits(gift["number"]),
                          balance=look.rial(answer["balance"]))
        self.app.push_screen(ConfirmScreen(question), lambda yes: self.call(
            "gift_spend", self.api.gift_spend, gift["number"], gift["amount"], gift["receipt"]) if yes else None)

    def got_gift_spend(self, answer: dict[str, Any]) -> None:
        look, gift = self.look, self.gift or {}
        self.say(look.t("gift.spent", paid=look.rial(gift.get("amount", 0)), card=look.digits(answer["number"]),
                        rial=look.rial(answer["balance"])))
        self.gift = None

    def action_logout(self) -> None:
        self.app.logout()  # type: ignore[attr-defined]


class RefundScreen(TaskScreen):
    """Find a sale by its receipt; refund what is left of it, or some of one line."""

    TITLE_KEY = "title.refund"
    KEYS = [("f3", "refund.line"), ("f9", "refund.all"), ("esc", "do.back"), ("ctrl_c", "do.quit")]
    BINDINGS = TaskScreen.BINDINGS + [Binding("f3", "line", show=False), Binding("f9", "all", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.sale: dict[str, Any] | None = None
        self.key = new_key()

    def body(self) -> ComposeResult:
        look = self.look
        with Vertical(id="content"):
            yield self.row(BidiInput(placeholder=look.t("receipt_ref"), id="receipt", max_length=64),
                           Button(look.line(look.t("refund.find")), id="find", compact=True), classes="row")
            yield Words("", id="sale")
            yield Horizontal(Table(["line.no", "line.item", "line.qty", "line.price", "line.left"], id="lines"),
                             classes="table-box")
            yield from self.buttons(("line", "refund.line", "default"), ("all", "refund.all", "primary"))
            yield Words("", id="result")

    def on_mount(self) -> None:
        self.query_one("#receipt", BidiInput).focus()

    @on(Button.Pressed, "#find")
    @on(BidiInput.Submitted, "#receipt")
    def find(self) -> None:
        receipt = i18n.latin_digits(self.query_one("#receipt", BidiInput).value.strip())
        if receipt:
            self.call("find", self.api.sales_by_receipt, receipt)

    def got_find(self, sales: list[dict[str, Any]]) -> None:
        look = self.look
        sale = sales[0]
        if self.sale is None or self.sale["sale_id"] != sale["sale_id"]:
            self.key = new_key()
        self.sale = sale
        self.query_one("#sale", Words).update(look.t("refund.sale", rial=look.rial(sale["amount"]),
                                                     when=look.when(sale["created_at"]), name=look.name(sale["member_name"]),
                                                     card=look.digits(sale.get("card") or "")))
        self.query_one("#lines", Table).fill([
            ([look.num(x["line_no"]), x["name"], look.num(x["quantity"]), look.num(x["unit_price"]),
              look.num(x["refundable"])], x) for x in sale["lines"]])
        self.query_one("#lines", Table).focus()

    def failed_find(self, error: Any) -> bool:
        if error.code in PASSING_CODES:
            return False
        self.sale = None
        self.query_one("#sale", Words).update("")
        self.query_one("#lines", Table).fill([])
        return False

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("line", "all"):
            await self.run_action(str(event.button.id))

    def _ask(self, what: str, lines: list[dict[str, int]] | None) -> None:
        sale, key = self.sale, self.key
        assert sale is not None
        question = self.look.t("refund.confirm", what=what, receipt=self.look.ident(sale["receipt_ref"]))
        self.app.push_screen(ConfirmScreen(question), lambda yes: self.call(
            "refund", self.api.refund, key, sale["sale_id"], lines) if yes else None)

    def action_all(self) -> None:
        if self.sale is None:
            self.say(self.look.t("sale.none"), error=True)
            return
        if not any(x["refundable"] for x in self.sale["lines"]):
            self.say(self.look.t("refund.nothing_left"), error=True)
            return
        self._ask(self.look.t("refund.what_all"), None)

    def action_line(self) -> None:
        line = self.query_one("#lines", Table).chosen
        if self.sale is None or line is None:
            self.say(self.look.t("no_selection"), error=True)
            return
        left = int(line["refundable"])
        if not left:
            self.say(self.look.t("refund.nothing_left"), error=True)
            return

        def check(values: dict[str, Any]) -> str | None:
            return None if 1 <= values["quantity"] <= left else self.look.t(
                "positive_number", field=self.look.t("refund.quantity", n=self.look.num(left)),
                example=self.look.num(1))

        self.form("menu.refund", [Field("quantity", "refund.quantity", "amount", value=str(left),
                                        label_values={"n": self.look.num(left)})],
                  lambda v: self._ask(self.look.t("refund.what_line", n=self.look.num(v["quantity"]),
                                                  line=self.look.num(line["line_no"])),
                                      [{"line_no": line["line_no"], "quantity": v["quantity"]}]), check)

    def got_refund(self, answer: dict[str, Any]) -> None:
        self.key = new_key()
        self.query_one("#result", Words).update(refund_lines(self.look, answer))
        self.say(self.look.t("sale.replayed" if answer.get("replayed") else "refund.done"))
        self.find()
