#!/usr/bin/env python3
"""Adds lockfile entries for optional platform packages that npm here cannot see.

The registry mirror serves only linux-x64 builds, so `npm install` writes a lockfile without the
other platforms' optional packages and `npm ci` then rejects it. Each missing optional dependency
gets an entry with its version, `optional: true` and the os/cpu read from its name.
"""
import json
import re
import sys

OS = {"darwin": "darwin", "linux": "linux", "win32": "win32", "freebsd": "freebsd", "android": "android"}
CPU = ["arm64", "x64", "arm", "ia32"]


def platform(name: str):
    base = name.split("/")[-1]
    os_ = next((o for o in OS if re.search(rf"(^|-){o}(-|$)", base)), None)
    cpu = next((c for c in CPU if re.search(rf"(^|-){c}(-|$)", base)), None)
    return os_, cpu


def main(path: str) -> None:
    with open(path) as f:
        lock = json.load(f)
    pkgs = lock["packages"]
    added = 0
    for key, meta in list(pkgs.items()):
        for dep, spec in (meta.get("optionalDependencies") or {}).items():
            if f"node_modules/{dep}" in pkgs:
                continue
            os_, cpu = platform(dep)
            entry = {"version": spec.lstrip("^~="), "optional": True}
            if os_:
                entry["os"] = [os_]
            if cpu:
                entry["cpu"] = [cpu]
            pkgs[f"node_modules/{dep}"] = entry
            added += 1
    lock["packages"] = dict(sorted(pkgs.items(), key=lambda kv: (kv[0] != "", kv[0])))
    with open(path, "w") as f:
        json.dump(lock, f, indent=2)
        f.write("\n")
    print(f"added {added} optional platform entries")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "package-lock.json")
