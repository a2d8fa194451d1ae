"""The output carried by progress reports: bounded, each piece once, what is cut counted."""

from agentbox.server.progress import OutputSoFar


def test_output_past_the_limit_is_counted_not_shown() -> None:
    output = OutputSoFar(limit=10)
    output.add("stdout", b"abcdefgh")
    output.add("stderr", b"ijkl")
    assert output.take() == "abcdefghij[agentbox: 2 more characters in the result]"
    assert output.take() == ""
    output.add("stdout", b"next")
    assert output.take() == "next"


def test_a_character_split_across_pieces_is_decoded_whole() -> None:
    output = OutputSoFar()
    encoded = "é€".encode()
    output.add("stdout", encoded[:1])
    output.add("stdout", encoded[1:4])
    output.add("stdout", encoded[4:])
    assert output.take() == "é€"
