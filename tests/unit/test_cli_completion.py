"""`coalmine completion bash`, `kubectl-coalmine` and the parser they come from.

The completion script is run in a real bash, as a shell runs it on TAB: COMP_WORDS and
COMP_CWORD set, `_coalmine` called, COMPREPLY read back. `kubectl` is a fake on PATH that
prints what a cluster would, and logs how it was asked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from coalmine.cli import completion
from coalmine.cli.main import build_parser, main, prog_name

REPO = Path(__file__).resolve().parents[2]
FAKE_KUBECTL = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
case "$2" in
  namespaces) printf 'namespace/default\\nnamespace/coalmine-demo\\n' ;;
  modeldeployments) printf 'modeldeployment.coalmine.dev/%s\\n' iris iris-big ;;
  modelversions) printf 'modelversion.coalmine.dev/%s\\n' iris-v1 iris-v2 ;;
esac
"""

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture
def complete(tmp_path: Path) -> Callable[[str], list[str]]:
    script = tmp_path / "coalmine.bash"
    script.write_text(completion.bash(build_parser()))
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir()
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(0o755)
    (tmp_path / "out-dir").mkdir()

    def run(line: str) -> list[str]:
        """Completions for `line`; the word under the cursor is the last (empty after a space)."""
        words = line.split(" ")
        quoted = " ".join(f"'{w}'" for w in words)
        shell = (
            f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
            "_coalmine; printf '%s\\n' \"${COMPREPLY[@]}\""
        )
        env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
        out = subprocess.run(
            ["bash", "-c", shell], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        ).stdout
        return [w for w in out.splitlines() if w]

    return run


def test_the_script_is_valid_bash_and_registers_both_names() -> None:
    script = completion.bash(build_parser())
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert "complete -F _coalmine coalmine kubectl-coalmine" in script


def test_subcommands(complete: Callable[[str], list[str]]) -> None:
    words = complete("coalmine ")
    commands = ["operator", "status", "history", "report", "promote", "abort", "retry", "undo"]
    assert {*commands, "completion"} <= set(words)
    assert complete("coalmine pro") == ["promote"]
    assert complete("kubectl-coalmine st") == ["status"]


def test_options_of_a_subcommand(complete: Callable[[str], list[str]]) -> None:
    assert complete("coalmine promote --f") == ["--full"]
    assert complete("coalmine undo --to") == ["--to-revision"]
    options = {"--help", "--namespace", "--out", "--no-png"}
    assert set(complete("coalmine report iris --")) == options


def test_modeldeployment_names_come_from_kubectl_in_the_given_namespace(
    complete: Callable[[str], list[str]], tmp_path: Path
) -> None:
    assert complete("coalmine status -n coalmine-demo ir") == ["iris", "iris-big"]
    calls = (tmp_path / "bin" / "calls").read_text()
    assert "get modeldeployments -n coalmine-demo -o name" in calls
    # once the name is given, only options are left
    assert complete("coalmine status iris ") == ["-h", "--help", "--namespace", "-n"]


def test_approve_completes_modelversion_names(
    complete: Callable[[str], list[str]], tmp_path: Path
) -> None:
    assert complete("coalmine approve -n ml iris-v") == ["iris-v1", "iris-v2"]
    assert "get modelversions -n ml -o name" in (tmp_path / "bin" / "calls").read_text()
    assert complete("coalmine approve iris-v1 --w") == ["--withdraw"]


def test_option_values(complete: Callable[[str], list[str]]) -> None:
    assert complete("coalmine status -n coal") == ["coalmine-demo"]
    assert complete("coalmine report iris --out out-") == ["out-dir"]
    assert complete("coalmine undo iris --to-revision ") == []
    assert complete("coalmine completion ") == ["bash"]


def test_completion_subcommand_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    assert capsys.readouterr().out == completion.bash(build_parser())


def test_kubectl_plugin_entry_point_is_the_same_main() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-coalmine"] == scripts["coalmine"] == "coalmine.cli.main:main"
    assert prog_name("/usr/local/bin/kubectl-coalmine") == "kubectl coalmine"
    assert prog_name("/venv/bin/coalmine") == "coalmine"
    assert build_parser("kubectl coalmine").format_usage().startswith("usage: kubectl coalmine")


def kubectl_binary() -> str | None:
    """The local cluster's kubectl when built, else one on PATH."""
    versions = (REPO / "hack" / "localcluster" / "versions.env").read_text()
    kube = next(v.split("=", 1)[1] for v in versions.splitlines() if v.startswith("KUBE_VERSION="))
    cache = Path(os.environ.get("COALMINE_CACHE") or Path.home() / ".cache" / "coalmine")
    built = cache / f"kubernetes-{kube}" / "bin" / "kubectl"
    return str(built) if built.exists() else shutil.which("kubectl")


def test_kubectl_runs_the_cli_as_its_plugin(tmp_path: Path) -> None:
    """kubectl finds `kubectl-coalmine` on PATH and hands it the rest of the line."""
    kubectl = kubectl_binary()
    if kubectl is None:
        pytest.skip("no kubectl (make cluster-up builds one)")
    plugin = tmp_path / "kubectl-coalmine"
    # what the console script does, with this interpreter and this tree on sys.path
    plugin.write_text(
        f"#!{sys.executable}\nimport sys\nfrom coalmine.cli.main import main\nsys.exit(main())\n"
    )
    plugin.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    listed = subprocess.run(
        [kubectl, "plugin", "list"], env=env, capture_output=True, text=True, check=False
    )
    assert str(plugin) in listed.stdout, listed.stdout + listed.stderr
    helped = subprocess.run(
        [kubectl, "coalmine", "status", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert helped.stdout.startswith("usage: kubectl coalmine status"), helped.stdout
