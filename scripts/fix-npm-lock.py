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
            version = spec.lstrip("^~=")
            # Node's lookup: the package's own node_modules, then each ancestor's.
            found = None
            base = key
            while True:
                candidate = f"{base}/node_modules/{dep}" if base else f"node_modules/{dep}"
                if candidate in pkgs:
                    found = candidate
                    break
                if not base:
                    break
                base = base.rsplit("/node_modules/", 1)[0] if "/node_modules/" in base else ""
            if found and pkgs[found].get("version") == version:
                continue
            # Place it where npm hoists it: as high as possible, but below a level that holds
            # another version (e.g. under an aliased older rivetkit that needs its own builds).
            levels = [""]
            parts = key.split("/node_modules/") if key else []
            for i in range(1, len(parts) + 1):
                levels.append("/node_modules/".join(parts[:i]))
            if found is not None:
                conflict = found[: -len(f"/node_modules/{dep}")] if found != f"node_modules/{dep}" else ""
                levels = levels[levels.index(conflict) + 1 :] if conflict in levels else levels[-1:]
            base = levels[0]
            target = f"{base}/node_modules/{dep}" if base else f"node_modules/{dep}"
            if target in pkgs:
                continue
            os_, cpu = platform(dep)
            entry = {"version": version, "optional": True}
            if os_:
                entry["os"] = [os_]
            if cpu:
                entry["cpu"] = [cpu]
            pkgs[target] = entry
            added += 1
    lock["packages"] = dict(sorted(pkgs.items(), key=lambda kv: (kv[0] != "", kv[0])))
    with open(path, "w") as f:
        json.dump(lock, f, indent=2)
        f.write("\n")
    print(f"added {added} optional platform entries")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "package-lock.json")
