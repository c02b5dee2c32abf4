#!/usr/bin/env python3
"""Do the README's two commands build every dependency once?

`cargo run -p flowgate-cli` resolves features for the CLI alone, `cargo test
--workspace` for every member with its dev-dependencies; a dependency that
gets other features in one than in the other is compiled twice, with all
that depends on it (wasmtime among them). `host/one-build` pins the union;
this check (run by `.ci/run`, offline, in seconds) fails when a new
dependency or feature breaks it, naming each package and the features only
one side enables.
"""
import re
import subprocess
import sys


def features(args):
    """Each package (name and version) of a `cargo tree`, with its features."""
    out = subprocess.run(
        ["cargo", "tree", *args, "--prefix", "none", "--format", "{p}|{f}", "--locked"],
        capture_output=True, text=True, check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        line = line.removesuffix(" (*)")
        if "|" not in line:
            continue
        package, enabled = line.split("|", 1)
        package = re.sub(r" \((?:/|proc-macro).*\)$", "", package.strip())
        found.setdefault(package, set()).update(f for f in enabled.split(",") if f)
    return found


main = features(["-p", "flowgate-cli", "-e", "normal,build"])
test = features(["--workspace", "-e", "normal,build,dev"])
differ = sorted(p for p in main if p in test and main[p] != test[p] and not p.startswith("flowgate"))
for package in differ:
    print(f"  {package}: only the tests enable {sorted(test[package] - main[package])}, "
          f"only the main command {sorted(main[package] - test[package])}")
print(f"one build: {len(differ)} of {len(main)} packages of the main command get other features in the test command")
sys.exit(1 if differ else 0)
