"""`cleanset keygen`, `cleanset attest`, `cleanset verify`: sign what a cleaned dataset is, and check it anywhere."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Annotated

import typer

from cleanset.cli.conventions import echo_json, local_path
from cleanset.errors import UserError, VerificationError


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("keygen")
    def keygen(
        out: Annotated[
            Path,
            typer.Option(
                "--out", help="Directory for cleanset.key (0600) and cleanset.pub; made 0700.", parser=local_path
            ),
        ],
        as_json: Annotated[bool, typer.Option("--json", help="Print the key paths and keyid as JSON.")] = False,
    ) -> None:
        """Make an Ed25519 signing key pair for attestations."""
        from cleanset.actions import dsse

        _owner_only_dir(out)
        priv, pub = dsse.generate_keypair(out)
        # Whatever the umask: the private key readable by its owner only, the public key by anyone, neither
        # writable by others.
        os.chmod(priv, 0o600)
        os.chmod(pub, 0o644)
        kid = dsse.keyid(dsse.load_public_key(pub))
        if as_json:
            echo_json({"private_key": str(priv), "public_key": str(pub), "keyid": kid})
            return
        typer.echo(f"private key: {priv} (keep it secret)\npublic key:  {pub}\nkeyid:       {kid}")

    @app.command("attest")
    def attest(
        run: Annotated[
            Path,
            typer.Argument(help="Run directory (scanned, and cleaned with `cleanset clean`).", parser=local_path),
        ],
        key: Annotated[
            Path,
            typer.Option("--key", help="Ed25519 private key PEM (from `cleanset keygen`).", parser=local_path),
        ],
        cleaned: Annotated[
            list[Path] | None,
            typer.Argument(
                help="The cleaned dataset (same as --dataset); default: the `out` recorded in RUN/clean.json.",
                parser=local_path,
                show_default=False,
            ),
        ] = None,
        dataset: Annotated[
            list[Path] | None,
            typer.Option(
                "--dataset",
                help="The cleaned dataset; default: the `out` recorded in RUN/clean.json.",
                parser=local_path,
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Attestation file; default RUN/attestation.intoto.json.", parser=local_path),
        ] = None,
        fmt: Annotated[str | None, typer.Option("--format", help="Source format of the dataset.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    ) -> None:
        """Sign an in-toto statement whose subject is the cleaned dataset's Merkle root (every item and file).

        The dataset must be a finished `cleanset clean` output of this run's latest revision.
        """
        from cleanset import api
        from cleanset.actions import dsse
        from cleanset.actions.attestation import leaves_path_for

        if cleaned and dataset:
            raise UserError("name the cleaned dataset once: after RUN or with --dataset, not both")
        dataset = dataset or cleaned
        clean_path = run / "clean.json"
        if not dataset:
            clean = json.loads(clean_path.read_text()) if clean_path.is_file() else None
            if not clean or not clean.get("out"):
                raise UserError(f"{clean_path}: missing or has no 'out'; pass --dataset DIR")
            if "://" in str(clean["out"]):  # a clean to a store: Path() would quietly make s3:/b/k of it
                raise UserError(
                    f"the last clean of {run} wrote to {clean['out']}: attest reads the cleaned dataset from a local "
                    "copy; download it and pass --dataset DIR"
                )
            dataset = [Path(clean["out"])]
        private = dsse.load_private_key(key)
        target = out or run / "attestation.intoto.json"
        st = api.attest(run, dataset, private, target, format=fmt)
        pred = st["predicate"]
        if as_json:
            echo_json(
                {
                    "attestation": str(target),
                    "leaves": str(leaves_path_for(target)),
                    "root": pred["merkle"]["root"],
                    "items": pred["dataset"]["items"],
                    "files": pred["dataset"]["files"],
                    "shards": len(pred["merkle"]["shards"]),
                    "keyid": pred["signer"]["keyid"],
                }
            )
            return
        typer.echo(
            f"attested {pred['dataset']['items']:,} items in {len(pred['merkle']['shards'])} shards and "
            f"{pred['dataset']['files']:,} files, root {pred['merkle']['root']}\n"
            f"wrote {target} and {leaves_path_for(target)}\nkeyid {pred['signer']['keyid']}"
        )

    @app.command("verify")
    def verify(
        dataset: Annotated[
            list[Path],
            typer.Argument(
                help="The dataset as you have it (folder, shards, files), then the attestation unless -a names it.",
                metavar="DATASET... [ATTESTATION]",
                parser=local_path,
            ),
        ],
        attestation: Annotated[
            Path | None,
            typer.Option("--attestation", "-a", help="The attestation file (or the last argument).", parser=local_path),
        ] = None,
        pubkey: Annotated[
            Path | None,
            typer.Option("--pubkey", help="Publisher's public key PEM; without it only integrity.", parser=local_path),
        ] = None,
        leaves: Annotated[
            Path | None,
            typer.Option("--leaves", help="Leaves file, if not beside the attestation.", parser=local_path),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the result as JSON on stdout (also when it fails).")
        ] = False,
    ) -> None:
        """Recompute the dataset's Merkle root, check the signature, and name any item that differs.

        Usage: cleanset verify DATASET ATTESTATION [--pubkey P]. Exit 0 verified, 1 failed, 2 usage error.
        """
        from cleanset import api
        from cleanset.actions import dsse
        from cleanset.actions.verify import describe_failure

        paths = list(dataset)
        if attestation is None:
            if len(paths) < 2:
                raise UserError("usage: cleanset verify DATASET ATTESTATION [--pubkey P]")
            attestation = paths.pop()
        key = dsse.load_public_key(pubkey) if pubkey is not None else None
        res = api.verify(paths, attestation, key, leaves)
        if not res.ok:
            if as_json:
                echo_json({"verified": False, "error": describe_failure(res)})
            raise VerificationError(describe_failure(res))
        pred = res.statement["predicate"]
        c = pred.get("counts") or {}
        if as_json:
            echo_json(
                {
                    "verified": True,
                    "items": res.items,
                    "files": res.files,
                    "root": res.root,
                    "keyid": res.keyid,
                    "trusted_key": res.trusted_key,
                    "attested_at": pred.get("attestedAt"),
                    "cleanset_version": (pred.get("cleanset") or {}).get("version"),
                    "banks": [{"name": b["name"], "version": b["version"]} for b in pred.get("banks") or []],
                    "counts": {k: c.get(k) for k in ("removed", "review", "failed")},
                }
            )
        else:
            typer.echo(
                f"verified: {res.items:,} items, {res.files:,} files, root {res.root}\n"
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


def _owner_only_dir(path: Path) -> None:
    """Make ``path`` a folder only its owner can enter, whatever the umask; an existing one must already be.

    An existing folder is not tightened behind the user's back (it may be shared on purpose); it is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise UserError(f"{path}: exists and is not a folder") from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise UserError(
                f"{path}: others can access this folder (mode {stat.S_IMODE(st.st_mode):04o}); pass a new folder "
                f"or make it owner-only first (chmod 700 {path})"
            ) from None
        return
    os.chmod(path, 0o700)  # mkdir's mode is cut by the umask, never widened: set it exactly
