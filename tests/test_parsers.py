import pytest

from haystack_rl import TagParser

P = TagParser("reversed_text")


@pytest.mark.parametrize(
    "text, parsed, well_formed",
    [
        ("<reversed_text>abc</reversed_text>", "abc", True),
        ("  <reversed_text>abc</reversed_text>\n", "abc", True),
        ("<think>hmm</think>\n<reversed_text>abc</reversed_text>", "abc", True),
        ("<reversed_text></reversed_text>", "", True),
        ("no tags at all", None, False),
        ("", None, False),
        ("<reversed_text>unclosed", None, False),
        ("sure: <reversed_text>abc</reversed_text>", "abc", False),
        ("<reversed_text>a</reversed_text><reversed_text>b</reversed_text>", "b", False),
        ("<reversed_text>out<reversed_text>in</reversed_text></reversed_text>", "in", False),
        ("<reversed_text>first</reversed_text> <reversed_text>unclosed", "first", False),
    ],
)
def test_parse_and_format(text, parsed, well_formed):
    assert P.parse(text) == parsed
    assert P.is_well_formed(text) is well_formed


def test_think_not_allowed_when_disabled():
    assert not TagParser("a", allow_think=False).is_well_formed("<think>x</think><a>y</a>")


def test_invalid_tag_name():
    with pytest.raises(ValueError, match="invalid tag"):
        TagParser("a b")


def test_round_trip():
    assert TagParser.from_dict(P.to_dict()).tag == "reversed_text"
