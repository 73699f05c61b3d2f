"""Goal: the default-rate flags parse strictly (a number of calls per second in the API's
bounds, else argparse's usage error naming the rule) and `raftflow dev` hands exactly the
given ones to its nodes, in a form `raftflow node` parses back to the same values.

Method: the real parser of `raftflow node` and `raftflow dev` (`cli.build_parser`).
"""

from __future__ import annotations

import pytest

from raftflow import cli
from raftflow.cluster.limit_flags import limit_flags_of


def _dev(*flags: str) -> list[str]:
    return limit_flags_of(cli.build_parser().parse_args(["dev", *flags]))


def test_dev_hands_the_given_flags_to_its_nodes_and_node_reads_them_back() -> None:
    assert _dev() == []
    handed = _dev("--default-start-rate", "0.3", "--default-poll-rate", "2000")
    assert handed == ["--default-start-rate", "0.3", "--default-poll-rate", "2000.0"]
    node = cli.build_parser().parse_args(["node", "--id", "n1", "--data-dir", "d", "--peers",
                                          "n1=127.0.0.1:1:2", *handed])
    assert (node.default_start_rate, node.default_poll_rate) == (0.3, 2000.0)


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "1e7", "fast", ""])
def test_a_rate_out_of_bounds_is_a_usage_error(value: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args(["dev", "--default-start-rate", value])
    assert caught.value.code == 2
    assert "calls per second" in capsys.readouterr().err
