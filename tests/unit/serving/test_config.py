"""The gRPC port flag: the contract the operator's pod template relies on."""

from __future__ import annotations

import pytest

from coalmine_serving.config import parse_settings

REQUIRED = ["--name", "m", "--uri", "file:///m.skops"]


def test_grpc_listens_on_8081_unless_told_otherwise() -> None:
    assert parse_settings(REQUIRED, {}).grpc_port == 8081
    assert parse_settings(REQUIRED, {"COALMINE_GRPC_PORT": "9000"}).grpc_port == 9000
    flag_wins = parse_settings([*REQUIRED, "--grpc-port", "0"], {"COALMINE_GRPC_PORT": "9000"})
    assert flag_wins.grpc_port == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grpc-port", "8080"], "--grpc-port must differ from --port"),
        (["--grpc-port", "-1"], "--grpc-port must be 0 (off)"),
        (["--grpc-port", "70000"], "--grpc-port must be 0 (off)"),
    ],
)
def test_bad_grpc_ports_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings([*REQUIRED, *args], {})
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
