"""`stylegan-anime download NAME|URL`: fetch a known model (or any weights URL) into the cache."""
from __future__ import annotations

import argparse

from ..io import hub
from ..errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("download", help="download a registry model or a URL into the cache",
                       description="Download a registry model (see `stylegan-anime models`) or an http(s) URL into "
                       "the cache ($STYLEGAN_ANIME_CACHE, default ~/.cache/stylegan_anime): resumed after an "
                       "interruption, checked against its sha256.")
    p.add_argument("source", metavar="NAME|URL")
    p.add_argument("--force", action="store_true", help="download again even if a verified copy is cached; with "
                   "--from: replace a verified cached copy by a file that cannot be verified")
    p.add_argument("--from", dest="from_file", metavar="FILE", default=None,
                   help="file a copy you downloaded by hand (for models without a direct link); it must load "
                   "as weights of the model's format and resolution")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.from_file:
        entry = _entry(args.source)
        remote = hub.entry_for_url(args.source) if entry is None else entry.remote()
        path = hub.import_file(remote, args.from_file, entry=entry, force=args.force)
    else:
        path = hub.fetch(args.source, force=args.force)
    print(path)
    return 0


def _entry(source: str) -> hub.ModelEntry | None:
    """The registry entry a name or URL stands for (None: a URL the registry does not know)."""
    if hub.is_url(source):
        return next((e for e in hub.registry().values() if e.url == source), None)
    entry = hub.find(source)
    if entry.bundled:
        raise UserError(f"{source} is bundled with the package; there is nothing to download")
    return entry
