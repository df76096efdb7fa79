"""`cleanset keygen`, `cleanset attest`, `cleanset verify`: sign what a cleaned dataset is, and check it anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cleanset.errors import UserError, VerificationError


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("keygen")
    def keygen(
        out: Annotated[Path, typer.Option("--out", help="Directory for cleanset.key (0600) and cleanset.pub.")],
    ) -> None:
        """Make an Ed25519 signing key pair for attestations."""
        from cleanset.actions import dsse

        priv, pub = dsse.generate_keypair(out)
        kid = dsse.keyid(dsse.load_public_key(pub))
        typer.echo(f"private key: {priv} (keep it secret)\npublic key:  {pub}\nkeyid:       {kid}")

    @app.command("attest")
    def attest(
        run: Annotated[Path, typer.Argument(help="Run directory (scanned, and cleaned with `cleanset clean`).")],
        key: Annotated[Path, typer.Option("--key", help="Ed25519 private key PEM (from `cleanset keygen`).")],
        dataset: Annotated[
            list[Path] | None,
            typer.Option("--dataset", help="The cleaned dataset; default: the `out` recorded in RUN/clean.json."),
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="Attestation file; default RUN/attestation.intoto.json.")
        ] = None,
        fmt: Annotated[str | None, typer.Option("--format", help="Source format of the dataset.")] = None,
    ) -> None:
        """Sign an in-toto statement whose subject is the cleaned dataset's Merkle root."""
        from cleanset.actions import dsse
        from cleanset.actions.attestation import attest as do_attest
        from cleanset.actions.attestation import leaves_path_for
        from cleanset.results.store import RunStore

        store = RunStore(run)
        clean_path = run / "clean.json"
        clean = json.loads(clean_path.read_text()) if clean_path.is_file() else None
        if not dataset:
            if not clean or not clean.get("out"):
                raise UserError(f"{clean_path}: missing or has no 'out'; pass --dataset DIR")
            dataset = [Path(clean["out"])]
        revision = clean.get("revision") if clean and isinstance(clean.get("revision"), int) else None
        rev = store.latest_revision() if revision is None else revision
        private = dsse.load_private_key(key)
        target = out or run / "attestation.intoto.json"
        st = do_attest(
            manifest=store.manifest_of(rev),
            summary=store.summary_of(rev),
            items=store.items_table(rev, columns=["shard", "key", "status", "verdict", "sha256"]),
            revision=rev,
            clean=clean,
            dataset=dataset,
            key=private,
            out=target,
            format=fmt or (clean or {}).get("format"),
        )
        pred = st["predicate"]
        typer.echo(
            f"attested {pred['dataset']['items']:,} items in {len(pred['merkle']['shards'])} shards, "
            f"root {pred['merkle']['root']}\nwrote {target} and {leaves_path_for(target)}\n"
            f"keyid {pred['signer']['keyid']}"
        )

    @app.command("verify")
    def verify(
        dataset: Annotated[list[Path], typer.Argument(help="The dataset as you have it (folder, shards, files).")],
        attestation: Annotated[
            Path | None, typer.Option("--attestation", "-a", help="The attestation file (or the last argument).")
        ] = None,
        pubkey: Annotated[
            Path | None, typer.Option("--pubkey", help="Publisher's public key PEM; without it only integrity.")
        ] = None,
        leaves: Annotated[
            Path | None, typer.Option("--leaves", help="Leaves file, if not beside the attestation.")
        ] = None,
    ) -> None:
        """Recompute the dataset's Merkle root, check the signature, and name any item that differs.

        Usage: cleanset verify DATASET ATTESTATION [--pubkey P]. Exit 0 verified, 1 failed, 2 usage error.
        """
        from cleanset.actions import dsse
        from cleanset.actions.verify import describe_failure
        from cleanset.actions.verify import verify as do_verify

        paths = list(dataset)
        if attestation is None:
            if len(paths) < 2:
                raise UserError("usage: cleanset verify DATASET ATTESTATION [--pubkey P]")
            attestation = paths.pop()
        key = dsse.load_public_key(pubkey) if pubkey is not None else None
        res = do_verify(paths, attestation, key, leaves)
        if not res.ok:
            raise VerificationError(describe_failure(res))
        pred = res.statement["predicate"]
        c = pred.get("counts") or {}
        typer.echo(
            f"verified: {res.items:,} items, root {res.root}\n"
            f"signed by keyid {res.keyid} at {pred.get('attestedAt')}; scanned with cleanset "
            f"{(pred.get('cleanset') or {}).get('version')} against "
            + ", ".join(f"{b['name']}@{b['version']}" for b in pred.get("banks") or [])
            + f"; removed {c.get('removed')}, review {c.get('review')}, failed {c.get('failed')}"
        )
        if not res.trusted_key:
            typer.echo(
                "warning: no --pubkey given; checked against the key inside the attestation, which proves the "
                "data matches it but not who signed it",
                err=True,
            )
