"""Write a single-platform OCI image archive (an OCI image layout in a tar) from local files.

Used by tools/build-node.sh for the images the real nodes of the cluster tier run, since no
registry can be reached: the sandbox ("pause") image from a static binary, and a Debian +
python3 image from the root filesystem tarball of tools/build-base-image.sh. The archive is
what ``ctr -n k8s.io images import`` reads; its index names the image
(``io.containerd.image.name``).

    python3 tools/oci_image.py --name localhost/prs-pause:1 --file pause:/pause \\
        --entrypoint /pause -o pause.tar
    python3 tools/oci_image.py --name localhost/prs-base:bookworm \\
        --layer base-bookworm-python.tar.gz --cmd python3 -o base.tar

Standard library only (it runs before any virtualenv exists).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EPOCH = 0  # fixed timestamps: the same inputs give the same digests
CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        size = len(self.data)
        return {"mediaType": self.media_type, "digest": self.digest, "size": size, **extra}


def layer_from_files(files: Iterable[tuple[Path, str]]) -> bytes:
    """An uncompressed layer tar holding each host file at its absolute path in the image."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for source, target in files:
            parts = Path(target.lstrip("/")).parts
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in made:
                    made.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            data = source.read_bytes()
            info.size, info.mode, info.mtime = len(data), source.stat().st_mode & 0o777, EPOCH
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def diff_id(layer: bytes) -> str:
    """The digest of the uncompressed layer (gzip is undone when the blob is compressed)."""
    digest = hashlib.sha256()
    if layer[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(layer)) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    else:
        digest.update(layer)
    return "sha256:" + digest.hexdigest()


def layer_blob(layer: bytes) -> Blob:
    compressed = layer[:2] == b"\x1f\x8b"
    suffix = "+gzip" if compressed else ""
    return Blob(layer, "application/vnd.oci.image.layer.v1.tar" + suffix)


def json_blob(document: dict[str, Any], media_type: str) -> Blob:
    return Blob(json.dumps(document, sort_keys=True, separators=(",", ":")).encode(), media_type)


def build_archive(
    name: str,
    layers: Sequence[bytes],
    entrypoint: Sequence[str],
    cmd: Sequence[str],
    env: Sequence[str],
    output: Path,
) -> str:
    """Write the archive; return the manifest digest."""
    blobs = [layer_blob(layer) for layer in layers]
    config = json_blob(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": list(env),
                **({"Entrypoint": list(entrypoint)} if entrypoint else {}),
                **({"Cmd": list(cmd)} if cmd else {}),
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id(layer) for layer in layers]},
        },
        "application/vnd.oci.image.config.v1+json",
    )
    manifest = json_blob(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.descriptor(),
            "layers": [blob.descriptor() for blob in blobs],
        },
        "application/vnd.oci.image.manifest.v1+json",
    )
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            manifest.descriptor(
                platform={"architecture": "amd64", "os": "linux"},
                annotations={
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": tag,
                },
            )
        ],
    }
    partial = output.with_name(output.name + ".partial")
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add(tar, "index.json", json.dumps(index).encode())
        written: set[str] = set()
        for blob in [config, manifest, *blobs]:
            if blob.digest not in written:
                written.add(blob.digest)
                _add(tar, "blobs/sha256/" + blob.digest.split(":", 1)[1], blob.data)
    partial.replace(output)
    return manifest.digest


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
    tar.addfile(info, io.BytesIO(data))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--name", required=True, help="image name, e.g. localhost/prs-pause:1")
    parser.add_argument(
        "--file", action="append", default=[], metavar="SRC:DEST",
        help="host file SRC at DEST in one layer made of all --file (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--layer", action="append", default=[], type=Path,
        help="a layer tarball (plain or gzip), e.g. a root filesystem (repeatable)",
    )  # fmt: skip
    parser.add_argument("--entrypoint", nargs="*", default=[])
    parser.add_argument("--cmd", nargs="*", default=[])
    parser.add_argument(
        "--env", action="append",
        default=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    )  # fmt: skip
    parser.add_argument("-o", "--output", required=True, type=Path)
    args = parser.parse_args(argv)
    layers = [path.read_bytes() for path in args.layer]
    if args.file:
        pairs = [item.split(":", 1) for item in args.file]
        layers.append(layer_from_files((Path(src), dest) for src, dest in pairs))
    if not layers:
        parser.error("give at least one --file or --layer")
    digest = build_archive(args.name, layers, args.entrypoint, args.cmd, args.env, args.output)
    print(f"{args.name} {digest} -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
