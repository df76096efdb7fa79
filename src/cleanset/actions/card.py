"""A Markdown section for a dataset card (Hugging Face README convention) or datasheet.

It states what was scanned, against which list versions (name, version, entry count, content digest), what was
removed and why, and how a reader holding the data can check the attestation. Keys and hashes of flagged items are
left out: a card is public, and naming removed items there would point at them.
"""

from __future__ import annotations

from typing import Any


def _md(text: object) -> str:
    """Neutralise Markdown/HTML in values that came from outside (bank names, reasons, file names)."""
    s = "" if text is None else str(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # entities: no raw HTML in any renderer
    # "." and "-" start lists only at the start of a line, which no value here is: versions and dates stay legible
    for ch in "\\`*_{}[]()#+!|":
        s = s.replace(ch, "\\" + ch)
    return s.replace("\n", " ")


def render_card(data: dict[str, Any], attestation_name: str = "attestation.intoto.json") -> str:
    run, c = data["run"], data["counts"]
    lines = [
        "## Safety screening (cleanset)",
        "",
        f"This dataset was screened with cleanset {_md(run.get('cleanset_version'))} against known-CSAM hash lists "
        f"before release. Scan finished {_md(run.get('finished'))}"
        + (f" (revision {run['revision']}, re-matched against newer list versions)." if run.get("revision") else "."),
        "",
        f"- Items scanned: **{c['items']:,}** ({_md(run.get('format'))} source)",
        f"- Kept: **{c['kept']:,}** · removed: **{c['removed']:,}** · held for review: **{c['review']:,}** · "
        f"could not be read (not kept): **{c['failed']:,}**",
        f"- Signals: {_md(', '.join(run.get('signals') or []))}; "
        f"rotations/flips checked: {'yes' if (run.get('probes') or {}).get('dihedral') else 'no'}; "
        f"sub-image regions checked: {'yes' if (run.get('probes') or {}).get('regions') else 'no'}",
        "",
        "### Lists checked",
        "",
        "| List | Version | Kind | Entries | Content digest |",
        "|---|---|---|---|---|",
    ]
    for b in data["banks"]:
        lines.append(
            f"| {_md(b.get('name'))} | {_md(b.get('version'))} | {'allow' if b.get('allow') else 'block'} | "
            f"{_md(b.get('entry_count'))} | `{str(b.get('digest') or '').replace('`', '')}` |"
        )
    lines += ["", "### Removed, by reason", "", "| Reason | Items |", "|---|---|"]
    by_reason: dict[str, int] = {}
    for r in data["flagged"]:
        if r["verdict"] == "remove":
            label = f"match in {r['bank']}" if r["bank"] else "; ".join(r["why"])
            by_reason[label] = by_reason.get(label, 0) + 1
    for label, n in sorted(by_reason.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {_md(label)} | {n:,} |")
    if not by_reason:
        lines.append("| (nothing removed) | 0 |")
    if data["failures_by_code"]:
        # By code, not by free-text reason: a reason can name a file, and the card is public.
        lines += ["", "Items that could not be read or screened were left out (fail closed):", ""]
        lines += [f"- {_md(g['code'])} ({_md(g['meaning'])}): {g['items']:,}" for g in data["failures_by_code"]]
    lines += [
        "",
        "### Verifying",
        "",
        f"The file `{attestation_name}` is an [in-toto](https://in-toto.io) Statement in a DSSE envelope, signed "
        "with Ed25519. Its subject is a Merkle root over every kept item's key and SHA-256; its predicate records "
        "the list versions, thresholds, policy and counts above. With cleanset installed, the dataset, the "
        "attestation's leaves file beside it and the publisher's public key:",
        "",
        "```bash",
        f"cleanset verify ./dataset {attestation_name} --pubkey publisher.pub",
        "```",
        "",
        "`verify` re-hashes the data in front of it and names any item that was added, removed or altered since "
        "the attestation was signed.",
        "",
    ]
    return "\n".join(lines)
