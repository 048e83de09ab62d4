"""`onionbench models publish | download`: the Hub commands' arguments (the work is in
`benchmark.zoo.hub`, imported only when a command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.errors import OnionbenchError


def _cmd_publish(args: argparse.Namespace) -> int:
    from benchmark.harness import artifacts
    from benchmark.zoo.hub import publish

    if args.artifacts:
        if not args.repo:
            raise OnionbenchError("--artifacts needs --repo ORG/NAME (the model repo to upload them to)")
        artifacts.publish(Path(args.artifacts), args.repo, endpoint=args.endpoint, tag=args.tag,
                          token_env=args.token_env)
        return 0
    if not args.org:
        raise OnionbenchError("models publish needs --org ORG (the project's is onionbench), or --artifacts DIR --repo "
                              "ORG/NAME for fitted artifacts")
    publish(args.models, org=args.org, endpoint=args.endpoint, tag=args.tag, token_env=args.token_env,
            registry_path=Path(args.registry), source=Path(args.source) if args.source else None,
            splits=not args.no_splits)
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from benchmark.harness import artifacts
    from benchmark.zoo.hub import _endpoint, download

    if args.artifacts:
        folder = artifacts.download(args.artifacts, args.revision or "main", endpoint=args.endpoint,
                                    cache_dir=Path(args.cache_dir) if args.cache_dir else None)
        print(f"artifacts ready in {folder}; score them with: onionbench score --fitted {folder}")
        return 0

    names = args.names or ["core"]
    print(f"downloading {' '.join(names)} from {_endpoint(args.endpoint)}"
          + (f" at revision {args.revision}" if args.revision else " at the pinned revisions"))
    folders = download(names, endpoint=args.endpoint, revision=args.revision,
                       cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                       registry_path=Path(args.registry), log=print)
    print(f"{len(folders)} model(s) ready")
    return 0


def add_hub_commands(models_subparsers) -> None:
    """`onionbench models publish` and `onionbench models download` (wired in by `build_parser`)."""
    from benchmark.zoo.registry import HUB_ORG, REGISTRY_PATH

    pub = models_subparsers.add_parser("publish",
                                       help="upload reference models and the splits to the Hub (maintainers)")
    pub.add_argument("--org", help=f"Hub organisation or user (the project's is {HUB_ORG}); required for models")
    pub.add_argument("--endpoint", metavar="URL", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    pub.add_argument("--tag", metavar="vX.Y", help="tag every uploaded commit, e.g. v1.0")
    pub.add_argument("--token-env", default="HF_TOKEN", metavar="VAR",
                     help="environment variable holding a write token (default HF_TOKEN); never printed")
    pub.add_argument("--models", nargs="+", metavar="NAME",
                     help="model names or core / extended / all (default: every trained model)")
    pub.add_argument("--from", dest="source", metavar="DIR",
                     help="folder holding NAME/ model folders (default: the embedded zoo)")
    pub.add_argument("--no-splits", action="store_true", help="do not publish the splits dataset repo")
    pub.add_argument("--registry", default=str(REGISTRY_PATH), metavar="FILE",
                     help="registry file to read and update with the commit ids")
    pub.add_argument("--artifacts", metavar="DIR", help="instead of models: upload the fitted-method artifacts "
                     "under DIR (`onionbench export`) to --repo")
    pub.add_argument("--repo", metavar="ORG/NAME", help="the model repo for --artifacts")
    pub.set_defaults(func=_cmd_publish)

    down = models_subparsers.add_parser("download",
                                        help="download reference models from the Hub (pinned, sha256-verified)")
    down.add_argument("names", nargs="*", metavar="NAME",
                      help="model names or core / smoke / extended / all (default: core)")
    down.add_argument("--endpoint", metavar="URL", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    down.add_argument("--revision", metavar="REV", help="branch, tag or commit instead of each model's pinned commit")
    down.add_argument("--cache-dir", metavar="DIR", help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    down.add_argument("--registry", default=str(REGISTRY_PATH), metavar="FILE",
                      help="registry file with the pinned commits and sha256")
    down.add_argument("--artifacts", metavar="ORG/NAME", help="instead of models: fetch a repo of fitted-method "
                      "artifacts at --revision (default main; pin a commit id), checked, for `score --fitted`")
    down.set_defaults(func=_cmd_download)
