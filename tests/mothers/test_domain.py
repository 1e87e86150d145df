"""Pure rules about mothers and pregnancies: no database."""

from __future__ import annotations

from datetime import date

import pytest

from app.mothers import domain
from app.mothers.domain import Trimester
from tests.helpers.factories import national_id

TODAY = date(2026, 11, 28)


class TestNationalId:
    def test_a_published_example_passes(self) -> None:
        # GB 11643 example number with an X check character.
        assert domain.check_digit("11010519491231002") == "X"
        parsed = domain.parse_national_id("11010519491231002x")
        assert parsed.value == "11010519491231002X"
        assert parsed.birth_date == date(1949, 12, 31)

    def test_every_wrong_check_digit_is_refused(self) -> None:
        good = national_id()
        domain.parse_national_id(good)
        for wrong in sorted(set("0123456789X") - {good[-1]}):
            with pytest.raises(ValueError, match="check digit"):
                domain.parse_national_id(good[:-1] + wrong)

    @pytest.mark.parametrize("raw", ["", "12345", "1101051995030700211", "11010519950307002Y"])
    def test_malformed_numbers_are_refused(self, raw: str) -> None:
        with pytest.raises(ValueError, match="18 characters"):
            domain.parse_national_id(raw)

    def test_an_impossible_birth_date_is_refused(self) -> None:
        first17 = "11010519950230002"  # 30 February
        with pytest.raises(ValueError, match="not a real date"):
            domain.parse_national_id(first17 + domain.check_digit(first17))

    def test_age_must_be_plausible_for_a_mother(self) -> None:
        domain.check_mother_age(date(1995, 3, 7), today=TODAY)
        with pytest.raises(ValueError, match="age 8"):
            domain.check_mother_age(date(2018, 1, 1), today=TODAY)
        with pytest.raises(ValueError, match="future"):
            domain.check_mother_age(date(2027, 1, 1), today=TODAY)


class TestPhoneAndMasking:
    @pytest.mark.parametrize(
        "raw", ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000", "8613800138000"]
    )
    def test_mobile_numbers_are_normalised(self, raw: str) -> None:
        assert domain.normalize_mobile(raw) == "13800138000"

    @pytest.mark.parametrize("raw", ["12800138000", "1380013800", "010-12345678", "abc"])
    def test_non_mobile_numbers_are_refused(self, raw: str) -> None:
        with pytest.raises(ValueError, match="mobile"):
            domain.normalize_mobile(raw)

    def test_masks_show_the_last_four_and_hide_region_and_birth_date(self) -> None:
        # Not the spec's 110105********0123: the hidden eight are her date of birth, which
        # her record shows beside the mask (issue 18).
        assert domain.mask_national_id("110105199001010123") == "**************0123"
        assert domain.mask_national_id("11010519491231002X") == "**************002X"
        assert domain.mask_phone("13800138000") == "138****8000"
        assert domain.mask_name("王小琪") == "王*琪"
        assert domain.mask_name("王琪") == "王*"


class TestAsciiDigitsOnly:
    """Fullwidth digits (NFKC) are the same number; other scripts' digits are refused, as
    \\d and str.isdigit() would have taken them (issue 18)."""

    FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")

    def test_a_fullwidth_national_id_is_the_same_number(self) -> None:
        good = national_id(serial="003")  # ends in X
        assert domain.parse_national_id(good.translate(self.FULLWIDTH)).value == good
        assert domain.parse_national_id(good.lower().translate(self.FULLWIDTH)).value == good
        # The form that got past the duplicate check: 17 fullwidth digits, an ASCII check.
        mixed = good[:17].translate(self.FULLWIDTH) + good[17]
        assert domain.parse_national_id(mixed).value == good

    @pytest.mark.parametrize(
        "digits",
        [
            str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),  # Arabic-Indic
            str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"),  # extended Arabic-Indic (Persian)
            str.maketrans("0123456789", "०१२३४५६७८९"),  # Devanagari
        ],
    )
    def test_other_scripts_digits_are_refused_naming_the_character(
        self, digits: dict[int, int]
    ) -> None:
        good = national_id()
        with pytest.raises(ValueError, match=r"0-9 .*U\+[0-9A-F]{4} .* at character 1\)"):
            domain.parse_national_id(good.translate(digits))
        one = good[:8] + good[8].translate(digits) + good[9:]  # a single foreign digit
        with pytest.raises(ValueError, match="at character 9"):
            domain.parse_national_id(one)
        with pytest.raises(ValueError, match=r"mobile.*U\+"):
            domain.normalize_mobile("13800138000".translate(digits))

    @pytest.mark.parametrize(
        "raw",
        ["１３８００１３８０００", "＋８６ １３８－００１３－８０００", "138\u30000013\u30008000"],
    )
    def test_a_fullwidth_mobile_is_the_same_number(self, raw: str) -> None:
        assert domain.normalize_mobile(raw) == "13800138000"


class TestDating:
    def test_naegele(self) -> None:
        assert domain.edd_from_lmp(date(2026, 5, 1)) == date(2027, 2, 5)

    @pytest.mark.parametrize(
        ("days", "display", "trimester"),
        [
            (0, "0+0", Trimester.FIRST),
            (97, "13+6", Trimester.FIRST),
            (98, "14+0", Trimester.SECOND),
            (171, "24+3", Trimester.SECOND),
            (195, "27+6", Trimester.SECOND),
            (196, "28+0", Trimester.THIRD),
            (280, "40+0", Trimester.THIRD),
        ],
    )
    def test_gestational_age_display_and_trimester(
        self, days: int, display: str, trimester: Trimester
    ) -> None:
        assert domain.format_gestational_age(days) == display
        assert domain.trimester(days) is trimester

    def test_ga_counts_from_the_edd(self) -> None:
        edd = domain.edd_from_lmp(date(2026, 6, 10))
        assert domain.gestational_age_days(edd, date(2026, 11, 28)) == 171

    @pytest.mark.parametrize(
        ("lmp", "message"),
        [(date(2026, 11, 29), "future"), (date(2026, 1, 23), "44 weeks")],
    )
    def test_lmp_limits(self, lmp: date, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            domain.check_lmp(lmp, today=TODAY)

    def test_lmp_exactly_44_weeks_ago_is_accepted(self) -> None:
        domain.check_lmp(date(2026, 1, 24), today=TODAY)
