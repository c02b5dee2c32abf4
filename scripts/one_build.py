#!/usr/bin/env python3
"""Do the README's commands build every dependency once?

`cargo run -p flowgate-cli` resolves features for the CLI alone, `pip
install ./python` for the Python extension alone, `cargo test --workspace`
for every member with its dev-dependencies; a dependency that gets other
features in one than in another is compiled twice, with all that depends on
it (wasmtime among them). `host/one-build` pins the union; this check (run
by `.ci/run`, in seconds) fails when a new dependency or feature breaks it,
naming each package and the features only one side enables.
"""
import re
import subprocess
import sys


def features(args):
    """Each package (name and version) of a `cargo tree`, with its features."""
    run = subprocess.run(
        ["cargo", "tree", *args, "--prefix", "none", "--format", "{p}|{f}", "--locked"],
        capture_output=True, text=True,
    )
    if run.returncode != 0:
        sys.exit(f"one build: `cargo tree {' '.join(args)}` failed:\n{run.stderr}")
    out = run.stdout
    found = {}
    for line in out.splitlines():
        line = line.removesuffix(" (*)")
        if "|" not in line:
            continue
        package, enabled = line.split("|", 1)
        package = re.sub(r" \((?:/|proc-macro).*\)$", "", package.strip())
        found.setdefault(package, set()).update(f for f in enabled.split(",") if f)
    return found


test = features(["--workspace", "-e", "normal,build,dev"])
failed = False
for command, package in [("cargo run -p flowgate-cli", "flowgate-cli"), ("pip install ./python", "flowgate-python")]:
    main = features(["-p", package, "-e", "normal,build"])
    differ = sorted(p for p in main if p in test and main[p] != test[p] and not p.startswith("flowgate"))
    for dependency in differ:
        print(f"  {dependency}: only the tests enable {sorted(test[dependency] - main[dependency])}, "
              f"only `{command}` {sorted(main[dependency] - test[dependency])}")
    print(f"one build: {len(differ)} of {len(main)} packages of `{command}` get other features in the test command")
    failed = failed or bool(differ)
sys.exit(1 if failed else 0)
