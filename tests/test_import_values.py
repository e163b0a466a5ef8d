"""Cell values: western and era dates, yes/no and consent words, NFKC where it is right."""

from __future__ import annotations

import datetime as dt

import pytest

from karte.domain.schema import Consent
from karte.importing.values import (
    ValueProblem,
    clean_kana,
    clean_name,
    parse_care_level,
    parse_consent,
    parse_date,
    parse_frequency,
    parse_help_kinds,
    parse_int,
    parse_phone,
    parse_role,
    parse_yes_no,
)

D = dt.date


@pytest.mark.parametrize(("text", "expected"), [
    ("1940-03-02", D(1940, 3, 2)),
    ("1940/3/2", D(1940, 3, 2)),
    ("1940.3.2", D(1940, 3, 2)),
    ("1940年3月2日", D(1940, 3, 2)),
    ("19400302", D(1940, 3, 2)),
    ("１９４０／３／２", D(1940, 3, 2)),
    ("1940-03-02 00:00:00", D(1940, 3, 2)),
    ("昭和15年3月2日", D(1940, 3, 2)),
    ("昭和１５年３月２日", D(1940, 3, 2)),
    ("㍼15年3月2日", D(1940, 3, 2)),
    ("S15.3.2", D(1940, 3, 2)),
    ("s15/3/2", D(1940, 3, 2)),
    ("Ｓ１５．３．２", D(1940, 3, 2)),
    ("R6.4.1", D(2024, 4, 1)),
    ("令和6年4月1日", D(2024, 4, 1)),
    ("令和元年5月1日", D(2019, 5, 1)),
    ("R元.5.1", D(2019, 5, 1)),
    ("平成31年4月30日", D(2019, 4, 30)),
    ("平成31年5月1日", D(2019, 5, 1)),   # printed on old forms: the date it names
    ("H1.1.8", D(1989, 1, 8)),
    ("大正14年12月1日", D(1925, 12, 1)),
    ("T14.12.1", D(1925, 12, 1)),
    ("明治45年1月1日", D(1912, 1, 1)),
])
def test_dates(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", [
    "1940-02-30", "令和1年4月30日", "R1.4.30", "平成1年1月7日", "昭和0年1月1日", "40/3/2", "昭和15年",
    "三月二日", "abc", "2024-13-01",
])
def test_bad_dates_are_refused(text):
    with pytest.raises(ValueProblem):
        parse_date(text)


def test_date_problems_never_echo_the_value():
    for text in ("1977-02-30", "S52.2.30", "19770230x"):
        with pytest.raises(ValueProblem) as info:
            parse_date(text)
        assert "1977" not in info.value.ja and "52" not in info.value.ja and "30" not in info.value.ja


@pytest.mark.parametrize(("text", "expected"), [
    ("有", True), ("無", False), ("○", True), ("〇", True), ("×", False), ("はい", True), ("いいえ", False),
    ("あり", True), ("なし", False), ("yes", True), ("NO", False), ("1", True), ("0", False), ("", None),
    ("　", None),
])
def test_yes_no(text, expected):
    assert parse_yes_no(text) is expected if expected is None else parse_yes_no(text) == expected


def test_yes_no_refuses_other_words():
    with pytest.raises(ValueProblem) as info:
        parse_yes_no("たぶん")
    assert "「有」か「無」" in info.value.ja


@pytest.mark.parametrize(("text", "expected"), [
    ("同意", Consent.CONSENTED), ("同意する", Consent.CONSENTED), ("○", Consent.CONSENTED),
    ("はい", Consent.CONSENTED), ("不同意", Consent.REFUSED), ("拒否", Consent.REFUSED),
    ("同意しない", Consent.REFUSED), ("×", Consent.REFUSED), ("未回答", Consent.NO_ANSWER),
    ("回答なし", Consent.NO_ANSWER), ("条例", Consent.ORDINANCE),
    ("条例による推定同意", Consent.ORDINANCE), ("consented", Consent.CONSENTED),
    ("ｏｒｄｉｎａｎｃｅ", Consent.ORDINANCE),
])
def test_consent_words_map_to_the_four_states(text, expected):
    assert parse_consent(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "空"), ("無", "判断できません"), ("なし", "判断できません"), ("OK?", "読めません"),
])
def test_consent_missing_or_ambiguous_is_a_problem(text, message):
    with pytest.raises(ValueProblem) as info:
        parse_consent(text)
    assert message in info.value.ja


def test_names_are_not_nfkc_normalised_but_kana_is_widened():
    assert clean_name("　髙橋　ﾊﾅ子 ") == "髙橋　ﾊﾅ子"
    assert clean_name("㈱青森") == "㈱青森"
    assert clean_kana(" ﾀｶﾊｼ ﾊﾅｺ") == "タカハシ ハナコ"
    assert clean_kana("ﾀﾞｲｽｹ") == "ダイスケ"


def test_phone_kept_as_text_and_leading_zero_guarded():
    assert parse_phone("０１７－０００－１２３４") == "017-000-1234"
    assert parse_phone("090ー000ー1234") == "090-000-1234"
    with pytest.raises(ValueProblem) as info:
        parse_phone("170001234")
    assert "0 で始まっていません" in info.value.ja
    with pytest.raises(ValueProblem) as info:
        parse_phone("電話なし")
    assert "形式" in info.value.ja


def test_numbers_codes_and_words():
    assert parse_int("１,２３４人") == 1234
    assert parse_int("3.0") == 3
    with pytest.raises(ValueProblem):
        parse_int("-1")
    with pytest.raises(ValueProblem):
        parse_int("2.5")
    assert parse_care_level("要介護３") == "要介護3"
    assert parse_care_level("介護3") == "要介護3"
    assert parse_care_level("なし") is None
    with pytest.raises(ValueProblem):
        parse_care_level("要介護6")
    assert parse_role("民生委員") == "welfare_commissioner"
    assert parse_role("地区社協役員") == "council_officer"
    assert parse_frequency("月1回") == "monthly"
    assert parse_help_kinds("見守り、除雪;防犯・交通安全") == ["watching", "snow", "safety"]
