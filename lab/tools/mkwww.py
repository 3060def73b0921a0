#!/usr/bin/env python3
"""Builds the victim's web root: an index, linked pages, stylesheets, images
and a few large files for downloads. Content is derived from a fixed seed so
every lab serves the same bytes."""
import os
import random
import sys

WORDS = ("firewall packet netfilter verdict capture window kohonen suffix tree "
         "connection flood scan block rule expire shard stream batch frame host").split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def main(root: str) -> None:
    rng = random.Random(7707)
    os.makedirs(os.path.join(root, "pages"), exist_ok=True)
    os.makedirs(os.path.join(root, "img"), exist_ok=True)
    os.makedirs(os.path.join(root, "files"), exist_ok=True)
    pages = 24
    for i in range(pages):
        links = "".join(f'<li><a href="/pages/p{j}.html">page {j}</a></li>' for j in rng.sample(range(pages), 5))
        body = "".join(f"<p>{text(rng, rng.randint(40, 400))}</p>" for _ in range(rng.randint(2, 30)))
        with open(os.path.join(root, "pages", f"p{i}.html"), "w") as f:
            f.write(f'<!doctype html><html><head><title>Page {i}</title><link rel="stylesheet" href="/style.css">'
                    f'</head><body><h1>Page {i}</h1><img src="/img/i{i % 8}.bin"><ul>{links}</ul>{body}</body></html>\n')
    with open(os.path.join(root, "index.html"), "w") as f:
        items = "".join(f'<li><a href="/pages/p{i}.html">page {i}</a></li>' for i in range(pages))
        f.write(f"<!doctype html><html><head><title>Vigil lab</title></head><body><ul>{items}</ul></body></html>\n")
    with open(os.path.join(root, "style.css"), "w") as f:
        f.write("body{font-family:sans-serif;margin:2em}" * 40 + "\n")
    for i in range(8):
        with open(os.path.join(root, "img", f"i{i}.bin"), "wb") as f:
            f.write(rng.randbytes(rng.randint(8_000, 120_000)))
    for name, size in (("small-256k.bin", 256 << 10), ("medium-1m.bin", 1 << 20), ("large-2m.bin", 2 << 20)):
        with open(os.path.join(root, "files", name), "wb") as f:
            f.write(rng.randbytes(size))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: mkwww.py ROOT")
    main(sys.argv[1])
