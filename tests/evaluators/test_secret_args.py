"""Tokens that start with a dash reach every command line intact."""

from __future__ import annotations

from evaluators.secret_args import glue_secret_values
from search.cli import build_parser


def test_a_dash_leading_token_parses_in_both_spellings() -> None:
    token = "-Xy_9kQ" + "a" * 20
    for argv in (["--fleet-token", token], [f"--fleet-token={token}"]):
        args = build_parser().parse_args(glue_secret_values(argv, {"--fleet-token"}))
        assert args.fleet_token == token


def test_only_the_named_options_are_glued_and_nothing_after_a_double_dash() -> None:
    argv = ["--study", "s", "--token", "-t", "--", "--token", "-u"]
    assert glue_secret_values(argv, {"--token"}) == ["--study", "s", "--token=-t", "--", "--token", "-u"]


def test_a_trailing_option_without_value_is_left_for_argparse() -> None:
    assert glue_secret_values(["--token"], {"--token"}) == ["--token"]
