"""The console's words in Persian and English (the agent's locale decides)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "title": {"en": "Loyalty club: manager console", "fa": "باشگاه مشتریان: میز مدیر"},
    "user": {"en": "User", "fa": "کاربر"},
    "pin": {"en": "PIN", "fa": "رمز"},
    "login": {"en": "Log in", "fa": "ورود"},
    "logout": {"en": "Log out", "fa": "خروج"},
    "lookup": {"en": "Card number or mobile (or swipe the card)", "fa": "شماره کارت یا موبایل (یا کارت را بکشید)"},
    "find": {"en": "Find", "fa": "جستجو"},
    "enrol": {"en": "Enrol member", "fa": "عضویت"},
    "issue": {"en": "Issue card", "fa": "صدور کارت"},
    "replace": {"en": "Replace lost card", "fa": "کارت جایگزین"},
    "block": {"en": "Block card", "fa": "مسدود کردن کارت"},
    "adjust": {"en": "Adjust points", "fa": "اصلاح امتیاز"},
    "name": {"en": "Name", "fa": "نام"},
    "mobile": {"en": "Mobile", "fa": "موبایل"},
    "birth_date": {"en": "Birth date (YYYY-MM-DD, optional)", "fa": "تاریخ تولد (اختیاری، میلادی YYYY-MM-DD)"},
    "referrer": {"en": "Referred by: card or mobile (optional)", "fa": "معرف: کارت یا موبایل (اختیاری)"},
    "card_number": {"en": "Card number", "fa": "شماره کارت"},
    "old_card": {"en": "Lost card number", "fa": "شماره کارت گم‌شده"},
    "new_card": {"en": "New card number", "fa": "شماره کارت جدید"},
    "reason": {"en": "Reason", "fa": "دلیل"},
    "points": {"en": "Points (+ to add, - to take)", "fa": "امتیاز (+ افزودن، - کسر)"},
    "ok": {"en": "OK", "fa": "تأیید"},
    "cancel": {"en": "Cancel", "fa": "انصراف"},
    "no_member": {"en": "Find a member first.", "fa": "ابتدا عضو را پیدا کنید."},
    "balance": {"en": "Balance", "fa": "مانده امتیاز"},
    "tier": {"en": "Tier", "fa": "سطح"},
    "cards": {"en": "Cards", "fa": "کارت‌ها"},
    "status": {"en": "Status", "fa": "وضعیت"},
    "enrolled": {"en": "Member enrolled", "fa": "عضو ثبت شد"},
    "issued": {"en": "Card issued", "fa": "کارت صادر شد"},
    "replaced": {"en": "Card replaced; the balance moves to the new card", "fa": "کارت جایگزین شد؛ امتیازها منتقل شد"},
    "blocked": {"en": "Card blocked", "fa": "کارت مسدود شد"},
    "adjusted": {"en": "Points adjusted; new balance", "fa": "امتیاز اصلاح شد؛ مانده جدید"},
    "required": {"en": "is required", "fa": "لازم است"},
    "whole_number": {"en": "must be a whole number, e.g. 500 or -200", "fa": "باید عدد صحیح باشد، مثلاً 500 یا -200"},
    "reader": {"en": "Reader", "fa": "کارتخوان"},
}


def t(key: str, locale: str) -> str:
    return TEXTS[key]["fa" if locale == "fa" else "en"]
