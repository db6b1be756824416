"""StreamGate's command line as the sources define it, so a flag in a manifest or a unit that the
binary does not know (a typo, a renamed option) fails here rather than in a crash-looping pod."""

from __future__ import annotations

import re

from .common import ROOT

SOURCES = ROOT / "Sources" / "streamgate"

# Flags the manifests may use before the sources define them (none now).
PENDING: set[str] = set()


def kebab(name: str) -> str:
    """swift-argument-parser's long name for a property: s3Endpoint → s3-endpoint, l2TTL → l2-ttl."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", name)
    return name.lower()


def known_flags() -> set[str]:
    flags = {"--help", "--version"}
    for source in SOURCES.glob("*.swift"):
        text = source.read_text()
        # An @Option or @Flag attribute (not @OptionGroup) up to the property it declares.
        for kind, attribute, name in re.findall(r"@(Option|Flag)\b(.*?)\bvar\s+(\w+)", text, re.S):
            custom = re.search(r'customLong\("([^"]+)"', attribute)
            long = custom.group(1) if custom else kebab(name)
            flags.add(f"--{long}")
            if kind == "Flag" and ".prefixedNo" in attribute:
                flags.add(f"--no-{long}")
    return flags


def unknown_flags(words, known) -> list[str]:
    flags = {w.split("=", 1)[0] for w in words if re.fullmatch(r"--[a-z0-9][a-z0-9-]*(=.*)?", w)}
    return sorted(flags - known - PENDING)


def check_manifest_flags(docs) -> None:
    """Every flag a StreamGate container passes exists on the command line."""
    from .common import containers, problem

    known = known_flags()
    if len(known) < 20:
        problem(SOURCES, f"found only {len(known)} options in the sources; the CLI cross-check cannot run")
        return
    for path, doc in docs:
        for container in containers(doc):
            if (container.get("command") or [None])[0] != "streamgate":
                continue
            words = [str(w) for w in container.get("args") or []]
            for unknown in unknown_flags(words, known):
                problem(path, f"{doc['metadata']['name']}: {unknown} is not an option of `streamgate {words[0] if words else ''}` (Sources/streamgate)")
