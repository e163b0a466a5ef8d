"""Cell values as coordinators type them: era dates, yes/no words, consent words, full-width text.

Each parser takes the cell text and returns the clean value, or raises :class:`ValueProblem`
with a plain Japanese message and its English twin; the message never quotes the cell back.
NFKC is applied to codes, numbers, dates, addresses and controlled words; never to names
(:func:`clean_name`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from karte.domain.schema import (
    CONSENT_JA,
    FREQUENCY_JA,
    HELP_JA,
    MOBILITY_JA,
    PLAN_STATUS_JA,
    ROLE_JA,
    SERVICE_JA,
    Consent,
    HelpKind,
    PlanStatus,
    Role,
    ServiceKind,
)


class ValueProblem(ValueError):
    """A cell that cannot be read; ``ja`` and ``en`` are the user-facing messages.

    Messages never repeat the cell's value: it may be personal data (a birth date, a care level).
    """

    def __init__(self, ja: str, en: str):
        super().__init__(en)
        self.ja = ja
        self.en = en


_SPACES = re.compile(r"[\s\u3000]+")


def nfkc(text: str) -> str:
    """NFKC with runs of spaces collapsed to one and the ends trimmed (for codes and words)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", str(text))).strip()


def clean_name(text: str) -> str:
    """A person's or place's name as written: only the ends trimmed (no NFKC: 髙, ㈱, 﨑 stay)."""
    return str(text).strip(" \t\r\n\u3000")


_HALF_KANA = re.compile(r"[\uff61-\uff9f]+")


def clean_kana(text: str) -> str:
    """A reading (フリガナ): half-width katakana widened (ﾀﾞ -> ダ), nothing else changed."""
    return _HALF_KANA.sub(lambda m: unicodedata.normalize("NFKC", m.group()), clean_name(text))


# --- dates ---------------------------------------------------------------------------------

#: era -> (first day, letter)
ERAS = {
    "明治": (dt.date(1868, 1, 25), "M"),
    "大正": (dt.date(1912, 7, 30), "T"),
    "昭和": (dt.date(1926, 12, 25), "S"),
    "平成": (dt.date(1989, 1, 8), "H"),
    "令和": (dt.date(2019, 5, 1), "R"),
}
_ERA_BY_LETTER = {letter: name for name, (_, letter) in ERAS.items()}
_SEP = r"\s*[-/.]\s*"
_WESTERN = re.compile(rf"^(\d{{4}}){_SEP}(\d{{1,2}}){_SEP}(\d{{1,2}})$")
_WESTERN_JA = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_ERA_JA = re.compile(r"^(明治|大正|昭和|平成|令和)\s*(\d{1,2}|元)\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$")
_ERA_LETTER = re.compile(rf"^([MTSHR])\s*(\d{{1,2}}|元){_SEP}(\d{{1,2}}){_SEP}(\d{{1,2}})$",
                         re.IGNORECASE)
_EXCEL_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]00:00(:00)?$")


def parse_date(text: str) -> dt.date:
    """A date in western or Japanese-era form.

    Accepted: ``1940-03-02``, ``1940/3/2``, ``1940.3.2``, ``1940年3月2日``, ``19400302``,
    ``昭和15年3月2日``, ``S15.3.2`` (also ``S15/3/2``, ``s15-3-2``), ``R6.4.1``, ``令和元年5月1日``,
    ``R元.5.1``, the era ligatures (``㍼15年3月2日``) and full-width digits. A date before its era
    began (``令和1年4月1日``) is refused; one after the era ended (``平成31年5月1日``, as printed on
    old forms) is read as the western date it names.
    """
    s = nfkc(text)
    s = _EXCEL_TIME.sub(r"\1", s)
    for pattern in (_WESTERN, _WESTERN_JA, _COMPACT):
        m = pattern.match(s)
        if m:
            return _make(int(m.group(1)), int(m.group(2)), int(m.group(3)), s)
    m = _ERA_JA.match(s) or _ERA_LETTER.match(s)
    if m:
        era = m.group(1)
        era = _ERA_BY_LETTER.get(era.upper(), era)
        start, _ = ERAS[era]
        n = 1 if m.group(2) == "元" else int(m.group(2))
        if n < 1:
            raise ValueProblem("元号の年が 0 です", "era year 0")
        day = _make(start.year + n - 1, int(m.group(3)), int(m.group(4)), s)
        if day < start:
            raise ValueProblem(f"{era}の始まり ({start.isoformat()}) より前の日付です",
                               f"date before the {era} era began")
        return day
    raise ValueProblem(
        "日付として読めません (例: 1940-03-02、1940/3/2、昭和15年3月2日、S15.3.2)",
        "not a date (e.g. 1940-03-02, 1940/3/2, 昭和15年3月2日, S15.3.2)")


def _make(year: int, month: int, day: int, s: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueProblem("存在しない日付です", "no such date") from None


# --- yes / no and controlled words ---------------------------------------------------------

_YES = {"有", "あり", "有り", "○", "〇", "◯", "●", "はい", "yes", "y", "true", "1", "該当", "対象",
        "要", "済"}
_NO = {"無", "なし", "無し", "×", "✕", "✖", "x", "いいえ", "no", "n", "false", "0", "非該当",
       "対象外", "不要"}


def parse_yes_no(text: str) -> bool | None:
    """有/無, あり/なし, ○/×, はい/いいえ, yes/no, 1/0 -> bool; empty -> None."""
    s = nfkc(text).casefold()
    if s == "":
        return None
    if s in _YES:
        return True
    if s in _NO:
        return False
    raise ValueProblem("「有」か「無」で入力してください (○/×、はい/いいえ も可)",
                       "expected yes/no (有/無, ○/×, はい/いいえ)")


_CONSENT = {
    Consent.CONSENTED: {"同意", "同意する", "同意あり", "同意有", "同意済", "同意済み", "あり", "有",
                        "はい", "○", "〇", "済", "consented", "consent", "yes", "y"},
    Consent.REFUSED: {"不同意", "同意しない", "同意なし", "同意無", "拒否", "辞退", "いいえ", "×",
                      "refused", "refuse", "no", "n"},
    Consent.NO_ANSWER: {"未回答", "回答なし", "無回答", "未返信", "未確認", "不明", "no_answer",
                        "noanswer", "unanswered", "unknown"},
    Consent.ORDINANCE: {"条例", "条例による推定同意", "推定同意", "条例同意", "条例による同意",
                        "ordinance", "deemed"},
}
# the domain's own labels (what karte's CSV downloads write) always read back
_CONSENT_LOOKUP = {nfkc(CONSENT_JA[state]).casefold().replace(" ", ""): state for state in CONSENT_JA}
_CONSENT_LOOKUP.update({word: state for state, words in _CONSENT.items() for word in words})
_CONSENT_AMBIGUOUS = {"無", "なし", "無し", "-", "ー"}


def parse_consent(text: str) -> Consent:
    """The usual Japanese words for the four consent states (同意, 不同意, 未回答, 条例による推定同意).

    ``無``/``なし`` is refused: it could mean 不同意 or 未回答, and guessing would be wrong half the time.
    """
    s = nfkc(text).casefold().replace(" ", "")
    if s == "":
        raise ValueProblem("同意欄が空です (同意・不同意・未回答・条例 のいずれか)", "consent missing")
    if s in _CONSENT_LOOKUP:
        return _CONSENT_LOOKUP[s]
    if s in _CONSENT_AMBIGUOUS:
        raise ValueProblem("「無」「なし」では不同意か未回答か判断できません。どちらかで入力してください",
                           "ambiguous consent: refused or no answer?")
    raise ValueProblem("同意の値が読めません (同意・不同意・未回答・条例 のいずれか)",
                       "unknown consent value")


_PLAN = {
    PlanStatus.DONE: {"作成済", "作成済み", "済", "済み", "有", "あり", "done", "○", "〇"},
    PlanStatus.IN_PROGRESS: {"作成中", "中", "in_progress", "inprogress", "△"},
    PlanStatus.NONE: {"未作成", "未", "無", "なし", "none", "×", ""},
}
_PLAN_LOOKUP = {nfkc(label).casefold(): state for state, label in PLAN_STATUS_JA.items()}
_PLAN_LOOKUP.update({w: s for s, words in _PLAN.items() for w in words})


def parse_plan_status(text: str) -> PlanStatus:
    s = nfkc(text).casefold().replace(" ", "")
    if s in _PLAN_LOOKUP:
        return _PLAN_LOOKUP[s]
    raise ValueProblem("個別避難計画の値が読めません (作成済・作成中・未作成)",
                       "unknown plan status")


_MOBILITY = {
    "independent": {"自立", "独歩", "歩行可", "independent"},
    "walk_with_help": {"介助歩行", "一部介助", "要介助", "杖", "杖歩行", "walk_with_help"},
    "wheelchair": {"車いす", "車椅子", "車イス", "wheelchair"},
    "bedridden": {"寝たきり", "全介助", "ストレッチャー", "bedridden"},
}
_MOBILITY_LOOKUP = {nfkc(label).casefold(): str(k) for k, label in MOBILITY_JA.items()}
_MOBILITY_LOOKUP.update({w: k for k, words in _MOBILITY.items() for w in words})


def parse_mobility(text: str) -> str | None:
    s = nfkc(text).casefold().replace(" ", "")
    if s == "":
        return None
    if s in _MOBILITY_LOOKUP:
        return _MOBILITY_LOOKUP[s]
    raise ValueProblem("移動の状況が読めません (自立・介助歩行・車いす・寝たきり)",
                       "unknown mobility")


_CARE = re.compile(r"^(?:要)?(支援|介護)\s*(\d)$")
_NO_CARE = {"", "なし", "無", "非該当", "自立", "-"}


def parse_care_level(text: str) -> str | None:
    """要支援1-2 / 要介護1-5 (full-width digits, 介護3 and 要介護３ accepted); なし -> None."""
    s = nfkc(text).replace(" ", "")
    if s in _NO_CARE:
        return None
    m = _CARE.match(s)
    if m:
        kind, n = m.group(1), int(m.group(2))
        if (kind == "支援" and 1 <= n <= 2) or (kind == "介護" and 1 <= n <= 5):
            return f"要{kind}{n}"
    raise ValueProblem("要介護度が読めません (要支援1〜2、要介護1〜5)", "unknown care level")


_DISABILITY = {"身体": ("身体", "身体障害", "身体障がい", "身体障害者手帳"),
               "知的": ("知的", "知的障害", "知的障がい", "療育", "療育手帳"),
               "精神": ("精神", "精神障害", "精神障がい", "精神保健福祉手帳")}
_DISABILITY_LOOKUP = {w: k for k, words in _DISABILITY.items() for w in words}


def parse_disability_kind(text: str) -> str | None:
    s = nfkc(text).replace(" ", "")
    if s in ("", "なし", "無"):
        return None
    if s in _DISABILITY_LOOKUP:
        return _DISABILITY_LOOKUP[s]
    raise ValueProblem("障害種別が読めません (身体・知的・精神)", "unknown disability kind")


def _enum_lookup(labels: dict, extra: dict[str, str]) -> dict[str, str]:
    table = {nfkc(str(k)).casefold(): str(k) for k in labels}
    table.update({nfkc(v).casefold(): str(k) for k, v in labels.items()})
    table.update({nfkc(k).casefold(): v for k, v in extra.items()})
    return table


_ROLE_LOOKUP = _enum_lookup(ROLE_JA, {
    "社協役員": Role.COUNCIL_OFFICER, "地区社協": Role.COUNCIL_OFFICER,
    "民生委員": Role.WELFARE_COMMISSIONER, "児童委員": Role.WELFARE_COMMISSIONER,
    "民生委員児童委員": Role.WELFARE_COMMISSIONER,
    "包括": Role.COMMUNITY_SUPPORT_CENTRE, "地域包括支援センター": Role.COMMUNITY_SUPPORT_CENTRE,
    "町会役員": Role.NEIGHBOURHOOD_OFFICER, "町内会役員": Role.NEIGHBOURHOOD_OFFICER,
    "町会": Role.NEIGHBOURHOOD_OFFICER, "町内会": Role.NEIGHBOURHOOD_OFFICER,
    "消防団": Role.FIRE_CORPS, "サポーター": Role.WELFARE_SUPPORTER,
})
_HELP_LOOKUP = _enum_lookup(HELP_JA, {
    "高齢者": HelpKind.ELDERLY, "障がい者": HelpKind.DISABILITY, "障害者": HelpKind.DISABILITY,
    "障害者支援": HelpKind.DISABILITY, "子育て": HelpKind.CHILDCARE, "健康": HelpKind.HEALTH,
    "声がけ": HelpKind.WATCHING, "見守り・声がけ": HelpKind.WATCHING, "防犯": HelpKind.SAFETY,
    "交通安全": HelpKind.SAFETY, "避難": HelpKind.EVACUATION, "避難支援・除雪": HelpKind.EVACUATION,
    "雪かき": HelpKind.SNOW, "送迎": HelpKind.TRANSPORT,
})
_SERVICE_LOOKUP = _enum_lookup(SERVICE_JA, {
    "サロン": ServiceKind.SALON, "茶話会": ServiceKind.SALON, "ふれあいいきいきサロン": ServiceKind.SALON,
    "見守り": ServiceKind.WATCHING, "声がけ": ServiceKind.WATCHING, "除雪": ServiceKind.SNOW,
    "ごみ出し": ServiceKind.RUBBISH, "買物": ServiceKind.SHOPPING, "託児": ServiceKind.CHILDCARE,
    "子育て": ServiceKind.PARENTING, "運動": ServiceKind.EXERCISE, "体操": ServiceKind.EXERCISE,
    "趣味": ServiceKind.HOBBY, "健康": ServiceKind.HEALTH,
})
_FREQUENCY_LOOKUP = _enum_lookup(FREQUENCY_JA, {
    "週1回": "weekly", "月2回": "biweekly", "月1回": "monthly", "2か月に1回": "bimonthly",
    "2ヶ月に1回": "bimonthly", "2ヵ月に1回": "bimonthly", "年4回": "quarterly", "不定期": "on_request",
    "依頼に応じて": "on_request", "随時・依頼に応じて": "on_request",
})


def parse_role(text: str) -> str:
    s = nfkc(text).casefold().replace(" ", "")
    if s in _ROLE_LOOKUP:
        return str(_ROLE_LOOKUP[s])
    raise ValueProblem(f"区分が読めません ({'・'.join(ROLE_JA.values())})", "unknown role")


def parse_service_kind(text: str) -> str:
    s = nfkc(text).casefold().replace(" ", "")
    if s in _SERVICE_LOOKUP:
        return str(_SERVICE_LOOKUP[s])
    raise ValueProblem("サービスの種類が読めません (サロン・見守り・雪かき など)",
                       "unknown service kind")


def parse_frequency(text: str) -> str | None:
    s = nfkc(text).casefold().replace(" ", "")
    if s == "":
        return None
    if s in _FREQUENCY_LOOKUP:
        return str(_FREQUENCY_LOOKUP[s])
    raise ValueProblem("頻度が読めません (毎週・隔週・毎月・隔月・年4回・随時)",
                       "unknown frequency")


_LIST_SPLIT = re.compile(r"[;,、/\s]+")


def parse_list(text: str) -> list[str]:
    """``"A;B"``, ``"A、B"``, ``"A,B"``, ``"A B"`` -> ``["A", "B"]`` (NFKC; ・ is not a separator)."""
    return [x for x in _LIST_SPLIT.split(nfkc(text)) if x]


def parse_help_kinds(text: str) -> list[str]:
    out: list[str] = []
    for word in parse_list(text):
        key = word.casefold()
        if key not in _HELP_LOOKUP:
            raise ValueProblem(f"できる支援が読めません ({'・'.join(HELP_JA.values())})",
                               "unknown help kind")
        kind = str(_HELP_LOOKUP[key])
        if kind not in out:
            out.append(kind)
    return out


# --- numbers, codes, phone -----------------------------------------------------------------

def parse_int(text: str, *, minimum: int = 0) -> int:
    """A whole number; full-width digits, thousands separators and ``人``/``件`` accepted."""
    s = nfkc(text).replace(",", "").removesuffix("人").removesuffix("件").strip()
    if re.fullmatch(r"[+-]?\d+(\.0+)?", s):
        n = int(float(s)) if "." in s else int(s)
        if n < minimum:
            raise ValueProblem(f"{minimum}以上の整数で入力してください", f"must be at least {minimum}")
        return n
    raise ValueProblem("整数ではありません", "not a whole number")


def parse_float(text: str) -> float:
    s = nfkc(text).replace(",", "")
    try:
        value = float(s)
    except ValueError:
        raise ValueProblem("数値ではありません", "not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueProblem("数値ではありません", "not a finite number")
    return value


def parse_code(text: str) -> str:
    """An identifier: NFKC, spaces removed; ``12.0`` from a spreadsheet becomes ``12``."""
    s = nfkc(text).replace(" ", "")
    if re.fullmatch(r"\d+\.0+", s):
        s = s.split(".")[0]
    return s


_PHONE = re.compile(r"^\+?[0-9()\-]{6,20}$")


def parse_phone(text: str) -> str:
    """A phone number kept as text (``017-000-1234``); full-width digits and dashes normalised.

    A number that lost its leading 0 (Excel stored it as a number) is refused rather than fixed.
    """
    s = nfkc(text).replace(" ", "")
    s = re.sub(r"[‐‑‒–—―−ー]", "-", s)
    if s == "":
        return ""
    if not _PHONE.match(s):
        raise ValueProblem("電話番号の形式ではありません (例: 017-000-1234)", "not a phone number")
    if s[0].isdigit() and s[0] != "0":
        raise ValueProblem("電話番号が 0 で始まっていません (Excel で数値になり先頭の 0 が消えていませんか)",
                           "phone number lost its leading 0")
    return s
