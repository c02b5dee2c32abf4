"""Policies from a directory load and refuse exactly as `flowgate check`
loads and refuses them: the same checks (they are the CLI's own code), the
same messages, a tampered bundle refused with its name."""

import pathlib
import shutil
import warnings

import pytest

import flowgate
from flowgate import _flowgate
from conftest import EXAMPLES, check, run_cli


def cli_refusal(*options):
    """The CLI's message for `check OPTIONS`: its `error: ` line, or its usage error's first line."""
    status, _, stderr = run_cli("check", "--no-progress", *options, input_path=EXAMPLES)
    assert status == 2, stderr
    first = stderr.strip().splitlines()[0]
    return first.removeprefix("error: ")


@pytest.fixture
def signed(tmp_path):
    """The reference set as signed bundles, with a trust file granting them."""
    bundles = tmp_path / "bundles"
    names = _flowgate._write_reference_bundles(bundles)
    run_cli("key", "new", "pboc-test", "--out", tmp_path / "keys", check_status=0)
    run_cli("sign", "--key", tmp_path / "keys" / "pboc-test.key", *[bundles / n for n in names], check_status=0)
    public = (tmp_path / "keys" / "pboc-test.pub").read_text().strip()
    trust = tmp_path / "trust.toml"
    trust.write_text(
        f'[[key]]\nid = "pboc-test"\npublic = "{public}"\nholder = "test"\n\n'
        f'[[grant]]\npolicies = ["*"]\nkeys = ["pboc-test"]\n'
    )
    return bundles, trust, names


def test_signed_bundles_decide_as_the_cli(signed):
    bundles, trust, _ = signed
    host = flowgate.Host(policies=bundles, trust=trust)
    decisions, _ = check(EXAMPLES, "--policies", bundles, "--trust", trust)
    lines = EXAMPLES.read_text().splitlines()
    assert [host.decide(lines[n - 1]) for n in sorted(decisions)] == [decisions[n] for n in sorted(decisions)]
    assert len(host.policies()) == 10 and len(host.policy_set) == 64


def test_a_tampered_bundle_is_refused_with_its_name(signed):
    bundles, trust, _ = signed
    wasm = bundles / "cross-border" / "policy.wasm"
    data = bytearray(wasm.read_bytes())
    data[len(data) // 2] ^= 0x01
    wasm.write_bytes(bytes(data))
    with pytest.raises(flowgate.Error) as refused:
        flowgate.Host(policies=bundles, trust=trust)
    message = str(refused.value)
    assert message == cli_refusal("--policies", bundles, "--trust", trust)
    assert "cross-border" in message, message


def test_an_edited_manifest_is_refused_with_its_name(signed):
    bundles, trust, _ = signed
    manifest = bundles / "lawful-basis" / "manifest.toml"
    manifest.write_text(manifest.read_text() + "\n# edited\n")
    with pytest.raises(flowgate.Error) as refused:
        flowgate.Host(policies=bundles, trust=trust)
    assert str(refused.value) == cli_refusal("--policies", bundles, "--trust", trust)
    assert "lawful-basis" in str(refused.value)


def test_unsigned_bundles_need_trust_or_allow_unsigned(tmp_path):
    bundles = tmp_path / "bundles"
    _flowgate._write_reference_bundles(bundles)
    with pytest.raises(flowgate.Error) as refused:
        flowgate.Host(policies=bundles)
    assert str(refused.value) == cli_refusal("--policies", bundles)
    assert "--allow-unsigned" in str(refused.value)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        host = flowgate.Host(policies=bundles, allow_unsigned=True)
    assert any("not verified" in str(w.message) for w in said)
    decisions, _ = check(EXAMPLES, "--policies", bundles, "--allow-unsigned")
    lines = EXAMPLES.read_text().splitlines()
    assert [host.decide(lines[n - 1]) for n in sorted(decisions)] == [decisions[n] for n in sorted(decisions)]


@pytest.mark.parametrize("kwargs,options", [
    ({"trust": "trust.toml"}, ["--trust", "trust.toml"]),
    ({"policies": "bundles", "trust": "t.toml", "allow_unsigned": True},
     ["--policies", "bundles", "--trust", "t.toml", "--allow-unsigned"]),
    ({"isolation": "sometimes"}, ["--isolation", "sometimes"]),
    ({"policies": "/nowhere/at/all"}, ["--policies", "/nowhere/at/all"]),
    ({"log": "log-dir"}, ["--log", "log-dir"]),
])
def test_refusals_carry_the_cli_message(kwargs, options):
    with pytest.raises(flowgate.Error) as refused:
        flowgate.Host(**kwargs)
    assert str(refused.value) == cli_refusal(*options)


def test_a_bundle_directory_passed_as_the_policies_is_refused(tmp_path):
    bundles = tmp_path / "bundles"
    _flowgate._write_reference_bundles(bundles)
    with pytest.raises(flowgate.Error) as refused:
        flowgate.Host(policies=bundles / "cross-border", allow_unsigned=True)
    assert str(refused.value) == cli_refusal("--policies", bundles / "cross-border", "--allow-unsigned")


def test_isolation_levels_decide_alike(host):
    line = EXAMPLES.read_text().splitlines()[0]
    for level in ("per-record", "per-call", "reuse"):
        assert flowgate.Host(isolation=level).decide(line) == host.decide(line)
